"""ganxun knowledge graph: load corpora, validate them against the ontology's shapes, store and export the graph."""

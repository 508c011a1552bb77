"""The one read model of the catalogue: topics with their closures, courses and materials as arrays, and the
controlled values the code turns on — read once per graph version and shared by ranking, search and analytics."""

"""One cadre's state: their roles' requirements, their records, hours credited by the plan's rules, and gaps."""

"""Work over every cadre at once: batch recommendations and the topic demand designers read."""

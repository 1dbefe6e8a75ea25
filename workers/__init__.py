"""rq integration: ready tasks of a lane run as rq jobs under a board claim."""

"""Gap reports and planning results in the formats planners use."""

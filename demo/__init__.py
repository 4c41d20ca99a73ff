"""The demo: a generated sample city and a simulator feeding it station events, for a first
look (`waystation demo`, `make run`), tests and benchmarks. Production (`waystation run`)
never loads or starts either."""

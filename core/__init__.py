"""The foundation: the change model, result records, config, errors and paths.

Every other package may import `core`; `core` imports nothing of the project.
"""

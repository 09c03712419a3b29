"""The agents' console: staff-only pages that list tasks live and show each task's timeline."""

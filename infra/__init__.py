"""Infrastructure: local launchers for the real services, compose file, configs."""

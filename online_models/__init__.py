"""River online learners: price elasticity and recommendations (issue 3)."""

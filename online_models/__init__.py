"""River online learners: price elasticity and recommendations ."""

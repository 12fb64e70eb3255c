"""The Feast feature repository, generated from the one feature definition in schemas/."""

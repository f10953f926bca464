"""Product recommendations from a behaviour model (see the recommendations issue); nothing here yet."""

"""Lab code: experiments built on the library (trainers, models, evaluation)."""

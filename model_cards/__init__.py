"""Model cards of Red Heart: ``template.md`` and its generator (``python -m redheart.model_cards.generate``)."""

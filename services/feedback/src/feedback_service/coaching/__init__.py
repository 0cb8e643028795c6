"""Coaching on each learner turn: the register due to the partner (register.py, rules in
register_rules.yaml) and the feedback card built from it and the emotion analysis (card.py)."""

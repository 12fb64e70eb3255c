"""A closed-loop shop whose ground truth lets tillflow's models be scored.

Shoppers with latent tastes browse, search, add to cart and buy; how likely a viewed
product is bought follows that product's true demand curve at the price tillflow
currently publishes. Inventory depletes and restocks; competitor prices drift.
"""

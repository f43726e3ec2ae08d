"""Diffusion processes over actions."""

"""diffrl: offline reinforcement learning with diffusion policies (Diffusion-QL, DTQL, DiffCPS)."""

__version__ = "0.1.0"

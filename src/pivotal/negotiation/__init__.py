"""Private negotiation between firms: consensus planning (ADMM) with VCG transfers."""

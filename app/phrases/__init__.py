"""Quick phrases (快捷短语): the shop's and each agent's own, grouped, with variables."""

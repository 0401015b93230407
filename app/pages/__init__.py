"""Server-rendered pages: landing, login, the agent workbench and the demo storefront."""

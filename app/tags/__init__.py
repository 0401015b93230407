"""Tags (标签): a shop's list of labels, conversations tagged by agents, the close rule."""

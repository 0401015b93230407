"""The stacks users would otherwise build on, kept tiny: same frames as Homing, relay only."""

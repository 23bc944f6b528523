print("nn-train: not yet implemented")

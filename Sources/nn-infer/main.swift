print("nn-infer: not yet implemented")

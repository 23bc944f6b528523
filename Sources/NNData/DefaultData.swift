/// Where the default data lives: Debian's `dataset-fashion-mnist` package.
public enum DefaultData {
    public static let directory = "/usr/share/datasets/fashion-mnist"
    public static let trainImages = "train-images-idx3-ubyte.gz"
    public static let trainLabels = "train-labels-idx1-ubyte.gz"
    public static let testImages = "t10k-images-idx3-ubyte.gz"
    public static let testLabels = "t10k-labels-idx1-ubyte.gz"
    /// Fashion-MNIST's class names, in label order.
    public static let fashionClasses = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
}

/// The page at `/`.
enum WebPage {
    static let html = "<!doctype html><title>nn-serve</title>"
}

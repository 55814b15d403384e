extension BinaryInteger {
    /// The decimal digits of a non-negative value, padded with leading zeros to `width`
    /// (`7.zeroPadded(6)` is `000007`): order numbers, timestamps, dates.
    public func zeroPadded(_ width: Int) -> String {
        let text = String(self)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}

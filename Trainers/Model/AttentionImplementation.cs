namespace QuantPeft.Trainers.Model;

/// <summary>How a decoder block computes softmax(QKᵀ/√d)V.</summary>
public enum AttentionImplementation
{
    /// <summary>
    /// libtorch's <c>scaled_dot_product_attention</c> with its causal flag: picks a fused kernel
    /// (flash / memory-efficient where the device has one) and never keeps the T×T score matrix.
    /// </summary>
    Fused,

    /// <summary>
    /// Materialises the scores, masks them, and applies a float32 softmax the way Hugging Face's
    /// eager attention does. Slower and O(T²) in memory; useful as a cross-check and on back-ends
    /// where the fused kernel is unavailable.
    /// </summary>
    Eager,
}

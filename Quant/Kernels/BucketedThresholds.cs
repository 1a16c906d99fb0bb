using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Kernels;

/// <summary>
/// O(1) evaluation of <see cref="DecisionThresholds.Count"/> for large (256-entry) tables: the top 16 bits of an
/// order-preserving integer key of x pick a bucket, a table gives how many thresholds lie below the whole bucket,
/// and a short float comparison loop adds the few thresholds inside it. Same integer result as the linear count.
/// </summary>
internal sealed class BucketedThresholds
{
    private readonly float[] _thresholds;
    private readonly byte[] _startCounts = new byte[65536];

    public BucketedThresholds(ReadOnlySpan<float> thresholds)
    {
        if (thresholds.Length > 255) throw new ArgumentException("at most 255 thresholds (8-bit codes)", nameof(thresholds));
        _thresholds = thresholds.ToArray();
        foreach (float t in _thresholds)
            if (t == 0f) throw new ArgumentException("a threshold of ±0 would make −0 and +0 fall on different sides", nameof(thresholds));
        int next = 0;
        for (int bucket = 0; bucket < 65536; bucket++)
        {
            // Thresholds whose key lies in an earlier bucket are below every float of this bucket.
            while (next < _thresholds.Length && (Key(_thresholds[next]) >> 16) < bucket) next++;
            _startCounts[bucket] = (byte)next;
        }
    }

    public static BucketedThresholds Signed { get; } = new(CodeBook.DynamicSigned.Thresholds);

    public static BucketedThresholds Unsigned { get; } = new(CodeBook.DynamicUnsigned.Thresholds);

    public int Count(float x)
    {
        int count = _startCounts[Key(x) >> 16];
        float[] thresholds = _thresholds;
        while (count < thresholds.Length && x > thresholds[count]) count++;
        return count;
    }

    // Monotone map float → uint: negative floats reversed below 0x8000_0000, positives above it.
    private static uint Key(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        return (bits & 0x8000_0000u) != 0 ? ~bits : bits | 0x8000_0000u;
    }
}

namespace QuantPeft.Quant.Codecs;

/// <summary>
/// A code table with its decision thresholds, shared by every backend so that they all decide codes from the
/// same float32 constants: bitsandbytes' literal thresholds for NF4 and FP4 (<see cref="CodeTables.Nf4Thresholds"/>),
/// derived midpoints (<see cref="DecisionThresholds"/>) for the NF-k and dynamic maps. Sorted tables decide
/// on x̂; FP4 decides on |x̂| over its magnitudes sorted, then adds the sign bit.
/// </summary>
public sealed class CodeBook
{
    // NF4 and FP4 decide with bitsandbytes' literal constants (see CodeTables), not derived midpoints.
    private static readonly Lazy<CodeBook> Nf4Book = new(() => new CodeBook(CodeTables.Nf4.ToArray(), CodeTables.Nf4Thresholds.ToArray(), []));
    private static readonly Lazy<CodeBook> Fp4Book = new(CreateFp4);
    private static readonly Lazy<CodeBook> SignedBook = new(() => Sorted(CodeTables.DynamicSigned));
    private static readonly Lazy<CodeBook> UnsignedBook = new(() => Sorted(CodeTables.DynamicUnsigned));
    private static readonly Lazy<CodeBook>[] NormalFloatBooks =
        [.. Enumerable.Range(0, 9).Select(bits => new Lazy<CodeBook>(() => Sorted(CodeTables.NormalFloat(Math.Max(bits, 2)))))];

    private readonly float[] _values;
    private readonly float[] _thresholds;
    private readonly byte[] _magnitudeCodes;

    private CodeBook(float[] values, float[] thresholds, byte[] magnitudeCodes)
    {
        _values = values;
        _thresholds = thresholds;
        _magnitudeCodes = magnitudeCodes;
    }

    /// <summary>The table, index = code (the <c>quant_map</c> / <c>code</c> tensor).</summary>
    public ReadOnlySpan<float> Values => _values;

    /// <summary>
    /// Decision thresholds: for sorted books between consecutive values; for FP4 between consecutive sorted magnitudes.
    /// </summary>
    public ReadOnlySpan<float> Thresholds => _thresholds;

    /// <summary>
    /// FP4 only: the 3-bit code of the k-th smallest magnitude (0, 1, 6, 7, 4, 5, 2, 3); empty for sorted books.
    /// </summary>
    public ReadOnlySpan<byte> MagnitudeCodes => _magnitudeCodes;

    /// <summary>Whether the code is sign bit (0b1000) plus magnitude, as in FP4, rather than an index into a sorted table.</summary>
    public bool IsSignMagnitude => _magnitudeCodes.Length != 0;

    /// <summary>The NF4 book.</summary>
    public static CodeBook Nf4 => Nf4Book.Value;

    /// <summary>The FP4 book.</summary>
    public static CodeBook Fp4 => Fp4Book.Value;

    /// <summary>The signed dynamic map (8-bit, first moments, double quantization).</summary>
    public static CodeBook DynamicSigned => SignedBook.Value;

    /// <summary>The unsigned dynamic map (8-bit, second moments).</summary>
    public static CodeBook DynamicUnsigned => UnsignedBook.Value;

    /// <summary>The 4-bit book for <paramref name="type"/>.</summary>
    public static CodeBook ForFourBit(FourBitType type) => type == FourBitType.Nf4 ? Nf4 : Fp4;

    /// <summary>The NormalFloat-k book, k = 2..8.</summary>
    /// <exception cref="ArgumentOutOfRangeException">bits is outside 2..8.</exception>
    public static CodeBook NormalFloat(int bits)
    {
        if (bits is < 2 or > 8) throw new ArgumentOutOfRangeException(nameof(bits), bits, "NormalFloat tables exist for 2..8 bits");
        return NormalFloatBooks[bits].Value;
    }

    /// <summary>The code of a scaled value x̂ (= x · (1/absmax)); the definition every backend implements.</summary>
    public int Encode(float scaled)
    {
        if (!IsSignMagnitude) return DecisionThresholds.Count(scaled, _thresholds);
        int magnitude = _magnitudeCodes[DecisionThresholds.Count(MathF.Abs(scaled), _thresholds)];
        return scaled < 0 ? magnitude | 8 : magnitude;
    }

    private static CodeBook Sorted(ReadOnlySpan<float> table) =>
        new(table.ToArray(), DecisionThresholds.ForSortedTable(table), []);

    private static CodeBook CreateFp4()
    {
        float[] fp4 = CodeTables.Fp4.ToArray();
        byte[] order = [.. Enumerable.Range(0, 8).OrderBy(code => fp4[code]).Select(code => (byte)code)];
        float[] magnitudes = [.. order.Select(code => fp4[code])];
        return new CodeBook(fp4, CodeTables.Fp4MagnitudeThresholds.ToArray(), order);
    }
}

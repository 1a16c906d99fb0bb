using TorchSharp;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Quant.LqLora;

/// <summary>
/// A matrix stored as LQ-LoRA stores its Q: NF-k codes (k = 2, 3 or 4) bit-packed, each B0-block's absmax as a
/// b0-bit unsigned integer over its B1-group's range, one second-level scale per group in the b1 dtype and
/// one global offset (<see cref="LqQuantizer"/>). It dequantizes to exactly the values
/// <see cref="LqQuantizer.FakeQuantize"/> returns, and can decode a slab of rows at a time.
/// </summary>
/// <remarks>
/// Packing: k = 2 and k = 4 put 4 or 2 codes in a byte, the first code in the lowest bits; k = 3 puts 8 codes in
/// 3 bytes as one little-endian 24-bit word, code i at bits 3i..3i+2 (bitsandbytes has no 3-bit format); NF8, only
/// reached through <see cref="FromCodes"/>, is one code per byte.
/// </remarks>
public sealed class LqQuantizedMatrix : IDisposable
{
    private readonly Tensor _codes;       // uint8, packed
    private readonly Tensor _scaleCodes;  // uint8 (groups, B1)
    private readonly Tensor _secondLevel; // f32 (groups, 1): the group's range, already rounded to the b1 dtype
    private readonly Tensor _offset;      // f32 scalar: min of the first-level absmax over the matrix
    private readonly Tensor _table;       // f32 NF-k values

    private LqQuantizedMatrix(LqQuantConfig config, long rows, long columns, Tensor codes, Tensor scaleCodes, Tensor secondLevel, Tensor offset, Tensor table)
    {
        Config = config;
        Rows = rows;
        Columns = columns;
        _codes = codes;
        _scaleCodes = scaleCodes;
        _secondLevel = secondLevel;
        _offset = offset;
        _table = table;
    }

    /// <summary>The quantization configuration.</summary>
    public LqQuantConfig Config { get; }

    /// <summary>Rows of the matrix.</summary>
    public long Rows { get; }

    /// <summary>Columns of the matrix.</summary>
    public long Columns { get; }

    /// <summary>Bytes held: packed codes, scale codes, second-level scales (counted at their b1 width) and the offset.</summary>
    public long StorageBytes => _codes.numel() + _scaleCodes.numel() + _secondLevel.numel() * Config.SecondLevelBits / 8 + 4;

    /// <summary>The tensors this matrix owns (packed codes, scale codes, second-level scales, offset, code table), all on one device.</summary>
    public IReadOnlyList<(string Name, Tensor Tensor)> Tensors =>
        [("codes", _codes), ("scale_codes", _scaleCodes), ("second_level", _secondLevel), ("offset", _offset), ("table", _table)];

    /// <summary>Rows per decoded slab that keeps slabs aligned to whole quantization groups.</summary>
    public long RowAlignment => Config.BlockSize0 * (long)Config.BlockSize1 / Gcd(Config.BlockSize0 * (long)Config.BlockSize1, Columns);

    /// <summary>Quantizes <paramref name="matrix"/> (float32, 2-D) under <paramref name="config"/>.</summary>
    /// <exception cref="QuantInputException">Not float32 or 2-D, a bit width other than 2, 3, 4, or a size that is not a multiple of B0·B1.</exception>
    public static LqQuantizedMatrix Quantize(Tensor matrix, LqQuantConfig config, string name = "matrix")
    {
        if (config.Bits is not (2 or 3 or 4))
            throw new QuantInputException($"'{name}': packed LQ-LoRA storage holds NF2, NF3 or NF4 codes, not NF{config.Bits}.");
        if (matrix.dim() != 2)
            throw new QuantInputException($"'{name}': expected a 2-D matrix, got [{string.Join(", ", matrix.shape)}].");
        if (matrix.dtype != ScalarType.Float32)
            throw new QuantInputException($"'{name}': LQ-LoRA quantization works in float32, got {matrix.dtype}.");
        long group = (long)config.BlockSize0 * config.BlockSize1;
        if (matrix.numel() % group != 0)
            throw new QuantInputException($"'{name}': {matrix.numel()} elements are not a multiple of B0·B1 = {group} required by {config}.");

        // The same arithmetic, in the same order, as LqQuantizer.FakeQuantize, so the decoded values are bit-identical.
        using var scope = torch.NewDisposeScope();
        var blocks = matrix.reshape(-1, config.BlockSize1, config.BlockSize0);
        var s1 = blocks.abs().amax(2);
        var offset = s1.min();
        var s2 = s1 - offset;
        var s3 = s2.amax([1], keepdim: true).to(SecondLevelType(config.SecondLevel)).to(ScalarType.Float32);
        double levels = (1 << config.ScaleBits) - 1;
        var step = s3.ClampMin(1e-38).Div(levels);
        var scaleCodes = s2.div(step).round_().ClampInPlace(0, levels);
        var scales = scaleCodes.mul(step).AddInPlace(offset).unsqueeze(2);
        var table = CodeTables.NormalFloat(config.Bits).ToArray();
        var midpoints = torch.tensor(Midpoints(table), device: matrix.device);
        var codes = torch.bucketize(blocks / scales.ClampMin(1e-38), midpoints, outInt32: true, right: false);
        var packed = Pack(codes.reshape(-1), config.Bits);
        var scaleBytes = config.ScaleBits <= 8 ? scaleCodes.to(ScalarType.Byte) : throw new QuantInputException($"'{name}': scale codes wider than 8 bits are not stored packed ({config}).");
        return new LqQuantizedMatrix(config, matrix.shape[0], matrix.shape[1],
            packed.MoveToOuterDisposeScope(), scaleBytes.MoveToOuterDisposeScope(), s3.MoveToOuterDisposeScope(),
            offset.MoveToOuterDisposeScope(), torch.tensor(table, device: matrix.device).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Packs the stored form an LQ-LoRA checkpoint reads back (<see cref="LqCodes"/>, one code per weight) into this
    /// slab-decodable form on the codes' device, keeping every code and scale as it is, so it dequantizes to exactly
    /// <see cref="LqCodes.Dequantize"/>. NF8 (which the checkpoint writer may choose) is stored one code per byte.
    /// </summary>
    /// <param name="codes">The stored matrix; not disposed.</param>
    /// <param name="name">The matrix's name for error messages.</param>
    /// <exception cref="QuantInputException">A bit width other than 2, 3, 4 or 8, scale codes wider than 8 bits, or a matrix that is not 2-D.</exception>
    public static LqQuantizedMatrix FromCodes(LqCodes codes, string name = "matrix")
    {
        var config = codes.Config;
        if (config.Bits is not (2 or 3 or 4 or 8))
            throw new QuantInputException($"'{name}': packed LQ-LoRA storage holds NF2, NF3, NF4 or NF8 codes, not NF{config.Bits}.");
        if (config.ScaleBits > 8)
            throw new QuantInputException($"'{name}': scale codes wider than 8 bits are not stored packed ({config}).");
        if (codes.Shape.Length != 2)
            throw new QuantInputException($"'{name}': expected a 2-D matrix, got [{string.Join(", ", codes.Shape)}].");
        using var scope = torch.NewDisposeScope();
        var device = codes.Codes.device;
        var packed = Pack(codes.Codes.reshape(-1), config.Bits);
        var scaleCodes = codes.ScaleCodes.to(ScalarType.Byte, copy: true).view(-1, config.BlockSize1);
        var secondLevel = codes.SecondLevel.to(ScalarType.Float32, copy: true).view(-1, 1);
        var offset = torch.tensor(codes.Offset, device: device);
        var table = torch.tensor(CodeTables.NormalFloat(config.Bits).ToArray(), device: device);
        return new LqQuantizedMatrix(config, codes.Shape[0], codes.Shape[1],
            packed.MoveToOuterDisposeScope(), scaleCodes.MoveToOuterDisposeScope(), secondLevel.MoveToOuterDisposeScope(),
            offset.MoveToOuterDisposeScope(), table.MoveToOuterDisposeScope());
    }

    /// <summary>The whole matrix in <paramref name="dtype"/> (a new tensor the caller owns).</summary>
    public Tensor Dequantize(ScalarType dtype = ScalarType.Float32)
    {
        var result = torch.empty([Rows, Columns], dtype, _codes.device);
        DecodeRows(0, Rows, result);
        return result;
    }

    /// <summary>Decodes rows [<paramref name="firstRow"/>, +<paramref name="rowCount"/>) into <paramref name="destination"/> (rowCount × Columns).</summary>
    /// <exception cref="ArgumentException">The slab does not start and end on whole quantization groups (see <see cref="RowAlignment"/>).</exception>
    public void DecodeRows(long firstRow, long rowCount, Tensor destination)
    {
        long group = (long)Config.BlockSize0 * Config.BlockSize1;
        long start = firstRow * Columns, count = rowCount * Columns;
        if (start % group != 0 || (count % group != 0 && firstRow + rowCount != Rows))
            throw new ArgumentException($"rows {firstRow}..{firstRow + rowCount} are not aligned to quantization groups of {group} elements");
        using var scope = torch.NewDisposeScope();
        int perUnit = Config.Bits == 3 ? 8 : 8 / Config.Bits;
        long bytesPerUnit = Config.Bits == 3 ? 3 : 1;
        var packed = _codes.narrow(0, start / perUnit * bytesPerUnit, count / perUnit * bytesPerUnit);
        var codes = Unpack(packed, Config.Bits);                                        // (count) int64
        long g0 = start / group, groups = count / group;
        var step = _secondLevel.narrow(0, g0, groups).ClampMin(1e-38).Div((1 << Config.ScaleBits) - 1);
        var scales = _scaleCodes.narrow(0, g0, groups).to(ScalarType.Float32).mul(step).AddInPlace(_offset).unsqueeze(2);
        var values = _table.index_select(0, codes).view(groups, Config.BlockSize1, Config.BlockSize0).mul_(scales);
        destination.copy_(values.view(rowCount, Columns));
    }

    // Codes occupy disjoint bit ranges, so shifting is multiplying by a power of two and or-ing is adding.
    private static Tensor Pack(Tensor codes, int bits)
    {
        var c = codes.to(ScalarType.Int32);
        int per = bits == 3 ? 8 : 8 / bits;
        var lanes = c.view(-1, per);
        var word = torch.zeros(lanes.shape[0], ScalarType.Int32, codes.device);
        for (int i = 0; i < per; i++) word = word.Add(lanes.select(1, i).Mul(1L << (bits * i)));
        if (bits != 3) return word.to(ScalarType.Byte);
        var bytes = torch.stack([word.Remainder(256), word.FloorDivide(256).Remainder(256), word.FloorDivide(65536)], 1);
        return bytes.reshape(-1).to(ScalarType.Byte);
    }

    private static Tensor Unpack(Tensor packed, int bits)
    {
        var p = packed.to(ScalarType.Int64);
        int per = bits == 3 ? 8 : 8 / bits;
        var word = p;
        if (bits == 3)
        {
            var three = p.view(-1, 3);
            word = three.select(1, 0).Add(three.select(1, 1).Mul(256L)).Add(three.select(1, 2).Mul(65536L));
        }
        var lanes = Enumerable.Range(0, per).Select(i => word.FloorDivide(1L << (bits * i)).Remainder(1L << bits)).ToArray();
        return torch.stack(lanes, 1).reshape(-1);
    }

    private static ScalarType SecondLevelType(SecondLevelStorage storage) => storage switch
    {
        SecondLevelStorage.BFloat16 => ScalarType.BFloat16,
        SecondLevelStorage.Float16 => ScalarType.Float16,
        _ => ScalarType.Float32,
    };

    private static float[] Midpoints(float[] table)
    {
        var result = new float[table.Length - 1];
        for (int i = 0; i < result.Length; i++) result[i] = (table[i] + table[i + 1]) / 2f;
        return result;
    }

    private static long Gcd(long a, long b) => b == 0 ? a : Gcd(b, a % b);

    /// <inheritdoc />
    public void Dispose()
    {
        _codes.Dispose();
        _scaleCodes.Dispose();
        _secondLevel.Dispose();
        _offset.Dispose();
        _table.Dispose();
    }
}

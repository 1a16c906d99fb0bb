using System.Buffers.Binary;
using System.Text;
using QuantPeft.Formats.Safetensors;
using K = QuantPeft.Formats.Safetensors.SafetensorsErrorKind;

namespace QuantPeft.Formats.Tests.Safetensors;

/// <summary>
/// A corpus of hand-made broken files, one per way the format can be violated. Each must be refused
/// with its specific error kind and a message that names the file.
/// </summary>
public sealed class MalformedFileTests : IDisposable
{
    private readonly TestFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static string F32(string name, string shape, long begin, long end) =>
        $"\"{name}\":{{\"dtype\":\"F32\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";

    private static byte[] LengthOnly(ulong n, int extra)
    {
        var b = new byte[8 + extra];
        BinaryPrimitives.WriteUInt64LittleEndian(b, n);
        return b;
    }

    private static byte[] Valid() => RawFile.Compose("{" + F32("a", "[2]", 0, 8) + "}", 8);

    public static TheoryData<string, byte[], K> Cases() => new()
    {
        { "empty file", [], K.HeaderTooSmall },
        { "7-byte file", [8, 0, 0, 0, 0, 0, 0], K.HeaderTooSmall },
        { "header length 2^64-1", LengthOnly(ulong.MaxValue, 16), K.HeaderTooLarge },
        { "header length just over 100 MB", LengthOnly(100_000_001, 16), K.HeaderTooLarge },
        { "header length past end", LengthOnly(1000, 20), K.InvalidHeaderLength },
        { "header length 100 MB, tiny file", LengthOnly(100_000_000, 20), K.InvalidHeaderLength },
        { "invalid UTF-8", RawFile.Compose([(byte)'{', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)':', (byte)'1', (byte)'}']), K.InvalidUtf8 },
        { "truncated JSON", RawFile.Compose("{\"a\":{\"dtype\":\"F32\","), K.InvalidJson },
        { "garbage after the object", RawFile.Compose("{} x"), K.InvalidJson },
        { "JSON comment", RawFile.Compose("{/*c*/}"), K.InvalidJson },
        { "trailing comma", RawFile.Compose("{" + F32("a", "[2]", 0, 8) + ",}", 8), K.InvalidJson },
        { "JSON array", RawFile.Compose("[]"), K.NotAnObject },
        { "leading space", RawFile.Compose(" {}"), K.NotAnObject },
        { "zero-length header", RawFile.Compose(""), K.NotAnObject },
        { "entry is a number", RawFile.Compose("{\"a\":5}"), K.NotAnObject },
        { "unknown dtype", RawFile.Compose("{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", 16), K.UnknownDType },
        { "lower-case dtype", RawFile.Compose("{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4), K.UnknownDType },
        { "overlapping offsets", RawFile.Compose("{" + F32("a", "[2]", 0, 8) + "," + F32("b", "[2]", 4, 12) + "}", 12), K.InvalidOffset },
        { "reversed offsets", RawFile.Compose("{" + F32("a", "[2]", 8, 0) + "}", 8), K.InvalidOffset },
        { "gap between tensors", RawFile.Compose("{" + F32("a", "[2]", 0, 8) + "," + F32("b", "[2]", 12, 20) + "}", 20), K.InvalidOffset },
        { "data not starting at 0", RawFile.Compose("{" + F32("a", "[1]", 4, 8) + "}", 8), K.InvalidOffset },
        { "negative offset", RawFile.Compose("{" + F32("a", "[2]", -1, 8) + "}", 8), K.InvalidOffset },
        { "offsets past the file", RawFile.Compose("{" + F32("a", "[4]", 0, 16) + "}", 8), K.OutOfFile },
        { "truncated data", Valid()[..^3], K.OutOfFile },
        { "size mismatch", RawFile.Compose("{\"a\":{\"dtype\":\"F16\",\"shape\":[4,8],\"data_offsets\":[0,96]}}", 96), K.SizeMismatch },
        { "negative dimension", RawFile.Compose("{" + F32("a", "[-1]", 0, 0) + "}"), K.InvalidShape },
        { "element count overflows", RawFile.Compose("{" + F32("a", "[4294967296,4294967296]", 0, 0) + "}"), K.InvalidShape },
        { "bit count overflows", RawFile.Compose("{\"a\":{\"dtype\":\"U64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,0]}}"), K.InvalidShape },
        { "dimension beyond 64 bits", RawFile.Compose("{" + F32("a", "[99999999999999999999]", 0, 0) + "}"), K.InvalidShape },
        { "odd F4 count", RawFile.Compose("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2), K.MisalignedSlice },
        { "missing dtype", RawFile.Compose("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8), K.MissingField },
        { "missing shape", RawFile.Compose("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8), K.MissingField },
        { "missing data_offsets", RawFile.Compose("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8), K.MissingField },
        { "dtype is a number", RawFile.Compose("{\"a\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}", 8), K.InvalidField },
        { "shape is a string", RawFile.Compose("{\"a\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", 8), K.InvalidField },
        { "fractional dimension", RawFile.Compose("{" + F32("a", "[1.5]", 0, 8) + "}", 8), K.InvalidField },
        { "one data offset", RawFile.Compose("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8), K.InvalidField },
        { "three data offsets", RawFile.Compose("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8), K.InvalidField },
        { "data_offsets is a string", RawFile.Compose("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":\"0,8\"}}", 8), K.InvalidField },
        { "dtype given twice", RawFile.Compose("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), K.InvalidField },
        { "duplicate tensor names", RawFile.Compose("{" + F32("a", "[2]", 0, 8) + "," + F32("a", "[2]", 8, 16) + "}", 16), K.DuplicateName },
        { "duplicate metadata", RawFile.Compose("{\"__metadata__\":{},\"__metadata__\":{}}"), K.DuplicateName },
        { "one trailing byte", [.. Valid(), 0], K.TrailingBytes },
        { "no tensors but data", RawFile.Compose("{}", 4), K.TrailingBytes },
        { "metadata value is a number", RawFile.Compose("{\"__metadata__\":{\"format\":1}}"), K.InvalidMetadata },
        { "metadata value is null", RawFile.Compose("{\"__metadata__\":{\"format\":null}}"), K.InvalidMetadata },
        { "metadata is an array", RawFile.Compose("{\"__metadata__\":[\"pt\"]}"), K.InvalidMetadata },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Malformed_file_is_refused_with_its_kind_and_the_file_name(string description, byte[] bytes, K expected)
    {
        string path = _folder.File(description.Replace(' ', '-') + ".safetensors");
        File.WriteAllBytes(path, bytes);

        var ex = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path).Dispose());

        Assert.Equal(expected, ex.Kind);
        Assert.Equal(path, ex.FilePath);
        Assert.Contains(Path.GetFileName(path), ex.Message);
        Assert.IsAssignableFrom<QuantPeftException>(ex);
    }

    [Fact]
    public void Size_mismatch_names_tensor_offsets_and_both_sizes()
    {
        string path = _folder.File("model-00002-of-00003.safetensors");
        File.WriteAllBytes(path, RawFile.Compose("{\"model.layers.3.mlp.up_proj.weight\":{\"dtype\":\"F16\",\"shape\":[4,8],\"data_offsets\":[0,96]}}", 96));

        var ex = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path));

        Assert.Equal("model.layers.3.mlp.up_proj.weight", ex.TensorName);
        Assert.Equal($"'{path}': tensor 'model.layers.3.mlp.up_proj.weight': data_offsets [0, 96] hold 96 bytes but F16 [4, 8] needs 64", ex.Message);
    }

    [Fact]
    public void Entry_errors_name_the_tensor()
    {
        string path = _folder.File("x.safetensors");
        File.WriteAllBytes(path, RawFile.Compose("{" + F32("ok", "[1]", 0, 4) + ",\"bad.weight\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8));

        var ex = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path));

        Assert.Equal(K.UnknownDType, ex.Kind);
        Assert.Equal("bad.weight", ex.TensorName);
        Assert.Contains("'bad.weight'", ex.Message);
        Assert.Contains("'Q4'", ex.Message);
    }

    [Fact]
    public void Missing_file_is_a_typed_error()
    {
        string path = _folder.File("absent.safetensors");
        var ex = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path));
        Assert.Equal(K.MissingShard, ex.Kind);
        Assert.Contains("absent.safetensors", ex.Message);
    }

    [Fact]
    public void Corrupt_header_length_is_refused_without_a_large_allocation()
    {
        // 99,999,999 is under the limit but past the end of the file: the reader must not allocate it.
        string path = _folder.File("big-claim.safetensors");
        File.WriteAllBytes(path, LengthOnly(99_999_999, 64));
        long before = GC.GetAllocatedBytesForCurrentThread();

        var ex = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path));

        Assert.Equal(K.InvalidHeaderLength, ex.Kind);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000);
    }

    [Fact]
    public void Unknown_entry_fields_are_ignored_like_the_reference_reader()
    {
        string path = _folder.File("extra.safetensors");
        File.WriteAllBytes(path, RawFile.Compose("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2],\"note\":{\"x\":[1,2]}}}", Encoding.ASCII.GetBytes("hi")));

        using var file = SafetensorsFile.Open(path);

        Assert.Equal("hi"u8.ToArray(), file.ReadBytes("a"));
    }
}

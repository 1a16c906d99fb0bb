using QuantPeft.Formats.Safetensors;

namespace QuantPeft.Formats.Tests.Safetensors;

/// <summary>
/// Checks reader and writer against the format itself rather than against each other: a file composed
/// byte by byte from the specification, and the exact header bytes the reference writer produces.
/// </summary>
public sealed class SpecFixtureTests : IDisposable
{
    private readonly TestFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Hand_composed_file_reads_per_the_spec()
    {
        // Entries deliberately listed out of data order; the reader must order them by offset.
        string json = "{\"__metadata__\":{\"format\":\"pt\"},"
            + "\"w\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[8,16]},"
            + "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[4,8]},"
            + "\"s\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]},"
            + "\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[16,16]}}";
        string padded = json.PadRight((json.Length + 7) / 8 * 8);
        byte[] data =
        [
            0xF9, 0xFF, 0xFF, 0xFF,             // s: I32 -7
            0x80, 0x3F, 0x20, 0xC0,             // b: BF16 1.0, -2.5
            0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0xFF, 0x7B, // w: F16 1.0, -2.0, 0.5, 65504
        ];
        string path = _folder.File("hand.safetensors");
        File.WriteAllBytes(path, RawFile.Compose(padded, data));

        using var file = SafetensorsFile.Open(path);

        Assert.Equal(padded.Length, file.HeaderLength);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal(["s", "b", "w", "e"], file.Tensors.Select(t => t.Name));
        var w = file.GetTensor("w");
        Assert.Equal(SafetensorsDType.F16, w.DType);
        Assert.Equal([2L, 2L], w.Shape);
        Assert.Equal(8 + padded.Length + 8, w.FileOffset);
        Assert.Equal(4, w.ElementCount);
        Assert.Equal(8, w.ByteLength);
        Assert.Equal([1f, -2f, 0.5f, 65504f], file.ReadFloat32("w"));
        Assert.Equal([1f, -2.5f], file.ReadFloat32("b"));
        var s = file.GetTensor("s");
        Assert.Equal(0, s.Rank);
        Assert.Equal(1, s.ElementCount);
        Assert.Equal([-7f], file.ReadFloat32("s"));
        Assert.Equal(0, file.GetTensor("e").ElementCount);
        Assert.Empty(file.ReadFloat32("e"));
        Assert.Equal(new byte[] { 0x80, 0x3F, 0x20, 0xC0 }, file.GetSpan("b").ToArray());
    }

    [Fact]
    public void Header_may_be_unpadded_and_escaped()
    {
        // The reader must not depend on our writer's padding, and must unescape names.
        string path = _folder.File("escaped.safetensors");
        File.WriteAllBytes(path, RawFile.Compose("{\"caf\\u00e9\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}", [1, 2, 3]));

        using var file = SafetensorsFile.Open(path);

        Assert.Equal([1, 2, 3], file.ReadBytes("café"));
    }

    public static TheoryData<string, string, long[], string> ReferenceHeaders() => new()
    {
        // Exact outputs of huggingface/safetensors' serialize() for these inputs (its own unit tests).
        { "attn.0", "F32", [1, 2, 3], "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}" },
        { "attn0", "F32", [1, 1, 2, 3], "{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}       " },
    };

    [Theory]
    [MemberData(nameof(ReferenceHeaders))]
    public void Writer_produces_the_reference_bytes(string name, string dtype, long[] shape, string expectedHeader)
    {
        float[] values = [0, 1, 2, 3, 4, 5];
        byte[] data = values.SelectMany(BitConverter.GetBytes).ToArray();
        string path = _folder.File("ref.safetensors");
        Assert.True(SafetensorsDTypes.TryParse(dtype, out var dt));

        SafetensorsWriter.WriteFile(path, [SafetensorsTensorEntry.FromBytes(name, dt, shape, data)]);

        Assert.Equal(RawFile.Compose(expectedHeader, data), File.ReadAllBytes(path));
    }

    [Fact]
    public void Empty_file_and_metadata_only_file_match_the_reference()
    {
        string a = _folder.File("empty.safetensors"), b = _folder.File("meta.safetensors");

        SafetensorsWriter.WriteFile(a, []);
        SafetensorsWriter.WriteFile(b, [], new Dictionary<string, string> { ["framework"] = "pt" });

        Assert.Equal(RawFile.Compose("{}      "), File.ReadAllBytes(a));
        Assert.Equal(RawFile.Compose("{\"__metadata__\":{\"framework\":\"pt\"}}     "), File.ReadAllBytes(b));
        using var fb = SafetensorsFile.Open(b);
        Assert.Empty(fb.Tensors);
        Assert.Equal("pt", fb.Metadata["framework"]);
    }

    [Fact]
    public void Dtype_table_matches_the_spec()
    {
        var expected = new (string Name, int Bits)[]
        {
            ("BOOL", 8), ("F4", 4), ("F6_E2M3", 6), ("F6_E3M2", 6), ("U8", 8), ("I8", 8), ("F8_E5M2", 8), ("F8_E4M3", 8),
            ("F8_E8M0", 8), ("F8_E4M3FNUZ", 8), ("F8_E5M2FNUZ", 8), ("I16", 16), ("U16", 16), ("F16", 16), ("BF16", 16),
            ("I32", 32), ("U32", 32), ("F32", 32), ("C64", 64), ("F64", 64), ("I64", 64), ("U64", 64),
        };
        Assert.Equal(expected.Select(e => e.Name), SafetensorsDTypes.All.Select(d => d.HeaderName()));
        Assert.Equal(expected.Select(e => e.Bits), SafetensorsDTypes.All.Select(d => d.BitSize()));
    }
}

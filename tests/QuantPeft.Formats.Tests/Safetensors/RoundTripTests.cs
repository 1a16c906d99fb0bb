using QuantPeft.Formats.Safetensors;

namespace QuantPeft.Formats.Tests.Safetensors;

public sealed class RoundTripTests : IDisposable
{
    private readonly TestFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>One tensor per dtype, shaped so sub-byte types fill whole bytes, with seeded random bytes.</summary>
    private static List<(SafetensorsTensorEntry Entry, byte[] Data)> EveryDType(int seed)
    {
        var rng = new Random(seed);
        var list = new List<(SafetensorsTensorEntry, byte[])>();
        foreach (var dt in SafetensorsDTypes.All)
        {
            long[] shape = dt.BitSize() switch { 4 => [2, 4], 6 => [4], _ => [3, 5] };
            var data = new byte[dt.ByteLength(shape)];
            rng.NextBytes(data);
            list.Add((SafetensorsTensorEntry.FromBytes($"t.{dt}", dt, shape, data), data));
        }
        return list;
    }

    private static void AssertHolds(IReadOnlyList<SafetensorsTensorInfo> tensors, Func<string, byte[]> read, List<(SafetensorsTensorEntry Entry, byte[] Data)> expected)
    {
        Assert.Equal(expected.Count, tensors.Count);
        foreach (var (entry, data) in expected)
        {
            var t = tensors.Single(x => x.Name == entry.Layout.Name);
            Assert.Equal(entry.Layout.DType, t.DType);
            Assert.Equal(entry.Layout.Shape, t.Shape);
            Assert.Equal(data, read(t.Name));
        }
    }

    [Fact]
    public void Every_dtype_round_trips_through_one_file()
    {
        var tensors = EveryDType(1);
        string path = _folder.File("all.safetensors");
        var meta = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ü \"quoted\"" };

        SafetensorsWriter.WriteFile(path, tensors.Select(t => t.Entry), meta);

        using var file = SafetensorsFile.Open(path);
        AssertHolds(file.Tensors, file.ReadBytes, tensors);
        Assert.Equal(meta, file.Metadata);
        Assert.Equal(0, file.DataSectionOffset % 8);
    }

    [Fact]
    public void Every_dtype_round_trips_through_shards()
    {
        var tensors = EveryDType(2);
        var meta = new Dictionary<string, string> { ["format"] = "pt" };

        var result = SafetensorsShardedWriter.Write(_folder.Path, tensors.Select(t => t.Entry), maxShardBytes: 100, meta);

        Assert.True(result.ShardPaths.Count > 2);
        Assert.EndsWith($"model-00001-of-{result.ShardPaths.Count:D5}.safetensors", result.ShardPaths[0]);
        Assert.Equal(tensors.Sum(t => t.Data.Length), result.TotalSize);
        using var checkpoint = SafetensorsCheckpoint.Open(_folder.Path);
        Assert.Equal(result.IndexPath, checkpoint.IndexPath);
        Assert.Equal(result.TotalSize, checkpoint.IndexTotalSize);
        Assert.Equal(result.ShardPaths.Count, checkpoint.Shards.Count);
        Assert.All(checkpoint.Shards, s => Assert.Equal("pt", s.Metadata["format"]));
        Assert.All(checkpoint.Shards, s => Assert.True(s.Tensors.Sum(t => t.ByteLength) <= 100 || s.Tensors.Count == 1));
        AssertHolds(checkpoint.Tensors, checkpoint.ReadBytes, tensors);
        Assert.DoesNotContain(_folder.Entries(), e => e.EndsWith(".qpeft-tmp", StringComparison.Ordinal));
    }

    [Fact]
    public void One_shard_is_written_as_model_safetensors_without_index()
    {
        var tensors = EveryDType(3);

        var result = SafetensorsShardedWriter.Write(_folder.Path, tensors.Select(t => t.Entry), maxShardBytes: 1 << 20);

        Assert.Null(result.IndexPath);
        Assert.Equal(["model.safetensors"], _folder.Entries());
        using var checkpoint = SafetensorsCheckpoint.Open(_folder.Path);
        AssertHolds(checkpoint.Tensors, checkpoint.ReadBytes, tensors);
    }

    [Fact]
    public void Float32_conversion_matches_hand_values()
    {
        string path = _folder.File("conv.safetensors");
        byte[] Le<T>(T[] v) where T : unmanaged => System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan()).ToArray();
        SafetensorsWriter.WriteFile(path,
        [
            SafetensorsTensorEntry.FromBytes("f64", SafetensorsDType.F64, [2], Le(new[] { 0.25, -3e10 })),
            SafetensorsTensorEntry.FromBytes("i8", SafetensorsDType.I8, [3], new byte[] { 0x80, 0x7F, 0xFF }),
            SafetensorsTensorEntry.FromBytes("u8", SafetensorsDType.U8, [2], new byte[] { 0, 255 }),
            SafetensorsTensorEntry.FromBytes("u16", SafetensorsDType.U16, [1], new byte[] { 0xFF, 0xFF }),
            SafetensorsTensorEntry.FromBytes("i16", SafetensorsDType.I16, [1], new byte[] { 0x00, 0x80 }),
            SafetensorsTensorEntry.FromBytes("i32", SafetensorsDType.I32, [1], Le(new[] { -123456 })),
            SafetensorsTensorEntry.FromBytes("u32", SafetensorsDType.U32, [1], Le(new[] { 4000000000u })),
            SafetensorsTensorEntry.FromBytes("i64", SafetensorsDType.I64, [1], Le(new[] { -(1L << 40) })),
            SafetensorsTensorEntry.FromBytes("u64", SafetensorsDType.U64, [1], Le(new[] { 1UL << 63 })),
            SafetensorsTensorEntry.FromBytes("bool", SafetensorsDType.BOOL, [3], new byte[] { 0, 1, 7 }),
            SafetensorsTensorEntry.FromBytes("f32", SafetensorsDType.F32, [2], Le(new[] { float.NegativeInfinity, 1.5f })),
            SafetensorsTensorEntry.FromBytes("f8", SafetensorsDType.F8_E4M3, [1], new byte[] { 0x38 }),
        ]);

        using var file = SafetensorsFile.Open(path);

        Assert.Equal([0.25f, -3e10f], file.ReadFloat32("f64"));
        Assert.Equal([-128f, 127f, -1f], file.ReadFloat32("i8"));
        Assert.Equal([0f, 255f], file.ReadFloat32("u8"));
        Assert.Equal([65535f], file.ReadFloat32("u16"));
        Assert.Equal([-32768f], file.ReadFloat32("i16"));
        Assert.Equal([-123456f], file.ReadFloat32("i32"));
        Assert.Equal([4e9f], file.ReadFloat32("u32"));
        Assert.Equal([-1099511627776f], file.ReadFloat32("i64"));
        Assert.Equal([9.223372e18f], file.ReadFloat32("u64"));
        Assert.Equal([0f, 1f, 1f], file.ReadFloat32("bool"));
        Assert.Equal([float.NegativeInfinity, 1.5f], file.ReadFloat32("f32"));
        var ex = Assert.Throws<SafetensorsFormatException>(() => file.ReadFloat32("f8"));
        Assert.Equal(SafetensorsErrorKind.UnsupportedConversion, ex.Kind);
        var missing = Assert.Throws<SafetensorsFormatException>(() => file.GetTensor("nope"));
        Assert.Equal(SafetensorsErrorKind.TensorNotFound, missing.Kind);
    }

    [Fact]
    public void Copy_stream_copy_and_mapped_span_agree()
    {
        var tensors = EveryDType(4);
        string path = _folder.File("direct.safetensors");
        SafetensorsWriter.WriteFile(path, tensors.Select(t => t.Entry));

        using var file = SafetensorsFile.Open(path);
        foreach (var (entry, data) in tensors)
        {
            var copy = new byte[data.Length];
            file.CopyTo(entry.Layout.Name, copy);
            using var ms = new MemoryStream();
            file.CopyTo(entry.Layout.Name, ms);
            Assert.Equal(data, copy);
            Assert.Equal(data, ms.ToArray());
            Assert.Equal(data, file.GetSpan(entry.Layout.Name).ToArray());
            var t = file.GetTensor(entry.Layout.Name);
            Assert.Equal(data[1..3], file.GetSpan(t, 1, 2).ToArray());
        }
    }
}

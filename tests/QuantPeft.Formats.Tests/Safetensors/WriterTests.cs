using QuantPeft.Formats.Safetensors;

namespace QuantPeft.Formats.Tests.Safetensors;

public sealed class WriterTests : IDisposable
{
    private readonly TestFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static SafetensorsTensorLayout L(string name, SafetensorsDType dt, params long[] shape) => new(name, dt, shape);

    [Fact]
    public void Tensors_are_ordered_by_alignment_descending_then_name_and_packed()
    {
        using var w = SafetensorsWriter.Create(_folder.File("o.safetensors"),
            [L("b", SafetensorsDType.U8, 3), L("a", SafetensorsDType.U8, 1), L("z", SafetensorsDType.F64, 2), L("c", SafetensorsDType.F16, 3), L("B", SafetensorsDType.U8, 1)]);

        Assert.Equal(["z", "c", "B", "a", "b"], w.Tensors.Select(t => t.Name));
        Assert.Equal([0L, 16, 22, 23, 24], w.Tensors.Select(t => t.DataBegin));
        Assert.Equal(27, w.Tensors[^1].DataEnd);
    }

    [Fact]
    public void Tensors_may_be_supplied_in_any_order_and_by_callback()
    {
        string path = _folder.File("any.safetensors");
        using (var w = SafetensorsWriter.Create(path, [L("x", SafetensorsDType.I32, 2), L("y", SafetensorsDType.U8, 5), L("z", SafetensorsDType.F32, 1000)]))
        {
            w.Write("y", [1, 2, 3, 4, 5]);
            w.Write("z", s => { for (int i = 0; i < 1000; i++) s.Write(BitConverter.GetBytes((float)i)); });
            w.Write("x", BitConverter.GetBytes(7).Concat(BitConverter.GetBytes(-8)).ToArray());
            Assert.False(File.Exists(path));
            w.Commit();
        }

        using var f = SafetensorsFile.Open(path);
        Assert.Equal([1, 2, 3, 4, 5], f.ReadBytes("y"));
        Assert.Equal([7f, -8f], f.ReadFloat32("x"));
        Assert.Equal(Enumerable.Range(0, 1000).Select(i => (float)i), f.ReadFloat32("z"));
        Assert.Equal(["any.safetensors"], _folder.Entries());
    }

    [Fact]
    public void Header_is_padded_to_a_multiple_of_8_for_every_name_length()
    {
        for (int n = 1; n <= 9; n++)
        {
            string path = _folder.File($"p{n}.safetensors");
            SafetensorsWriter.WriteFile(path, [SafetensorsTensorEntry.FromBytes(new string('n', n), SafetensorsDType.F64, [1], new byte[8])]);
            using var f = SafetensorsFile.Open(path);
            Assert.Equal(0, f.HeaderLength % 8);
            Assert.Equal(0, f.Tensors[0].FileOffset % 8);
        }
    }

    [Fact]
    public void A_throwing_callback_leaves_nothing_behind_and_keeps_the_old_file()
    {
        string path = _folder.File("model.safetensors");
        File.WriteAllText(path, "old");
        var entries = new[]
        {
            SafetensorsTensorEntry.FromBytes("a", SafetensorsDType.U8, [4], new byte[4]),
            SafetensorsTensorEntry.FromCallback("b", SafetensorsDType.U8, [4], s => { s.Write([1, 2]); throw new IOException("source failed"); }),
        };

        var ex = Assert.Throws<IOException>(() => SafetensorsWriter.WriteFile(path, entries));

        Assert.Equal("source failed", ex.Message);
        Assert.Equal(["model.safetensors"], _folder.Entries());
        Assert.Equal("old", File.ReadAllText(path));
    }

    [Fact]
    public void A_throwing_callback_in_a_sharded_write_leaves_nothing_behind()
    {
        var entries = Enumerable.Range(0, 6).Select(i => i < 5
            ? SafetensorsTensorEntry.Zeros($"t{i}", SafetensorsDType.F32, [16])
            : SafetensorsTensorEntry.FromCallback($"t{i}", SafetensorsDType.F32, [16], _ => throw new InvalidDataException("boom")));

        Assert.Throws<InvalidDataException>(() => SafetensorsShardedWriter.Write(_folder.Path, entries, maxShardBytes: 64));

        Assert.Empty(_folder.Entries());
    }

    [Theory]
    [InlineData(3)]
    [InlineData(5)]
    public void A_callback_writing_the_wrong_size_fails_and_leaves_nothing(int bytes)
    {
        string path = _folder.File("w.safetensors");

        var ex = Assert.Throws<InvalidOperationException>(() => SafetensorsWriter.WriteFile(path,
            [SafetensorsTensorEntry.FromCallback("t", SafetensorsDType.U8, [4], s => s.Write(new byte[bytes]))]));

        Assert.Contains("'t'", ex.Message);
        Assert.Empty(_folder.Entries());
    }

    [Fact]
    public void Commit_refuses_unwritten_tensors_and_dispose_cleans_up()
    {
        string path = _folder.File("partial.safetensors");
        using (var w = SafetensorsWriter.Create(path, [L("a", SafetensorsDType.U8, 1), L("b", SafetensorsDType.U8, 1)]))
        {
            w.Write("a", [9]);
            Assert.Throws<ArgumentException>(() => w.Write("b", [1, 2]));
            Assert.Throws<InvalidOperationException>(() => w.Write("a", [9]));
            var ex = Assert.Throws<InvalidOperationException>(w.Commit);
            Assert.Contains("'b'", ex.Message);
        }
        Assert.Empty(_folder.Entries());
    }

    [Fact]
    public void Invalid_declarations_are_refused()
    {
        string path = _folder.File("bad.safetensors");
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Create(path, [L("a", SafetensorsDType.U8, 1), L("a", SafetensorsDType.U8, 1)]));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Create(path, [L("__metadata__", SafetensorsDType.U8, 1)]));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Create(path, [L("a", SafetensorsDType.F4, 3)]));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Create(path, [L("a", SafetensorsDType.U8, -1)]));
        Assert.Empty(_folder.Entries());
    }

    [Fact]
    public void Zeros_read_back_as_zeros()
    {
        string path = _folder.File("z.safetensors");
        SafetensorsWriter.WriteFile(path, [SafetensorsTensorEntry.Zeros("big", SafetensorsDType.BF16, [1024, 1024]), SafetensorsTensorEntry.FromBytes("s", SafetensorsDType.U8, [1], new byte[] { 5 })]);

        using var f = SafetensorsFile.Open(path);
        Assert.Equal(8 + f.HeaderLength + 2 * 1024 * 1024 + 1, new FileInfo(path).Length);
        Assert.True(f.ReadFloat32("big").All(v => v == 0));
        Assert.Equal([5], f.ReadBytes("s"));
    }
}

using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Safetensors;
using K = QuantPeft.Formats.Safetensors.SafetensorsErrorKind;

namespace QuantPeft.Formats.Tests.Safetensors;

public sealed class CheckpointTests : IDisposable
{
    private readonly TestFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private void WriteShard(string name, params string[] tensors) =>
        SafetensorsWriter.WriteFile(_folder.File(name), tensors.Select(t => SafetensorsTensorEntry.FromBytes(t, SafetensorsDType.U8, [1], new[] { (byte)t[0] })));

    private void WriteIndex(string weightMapJson) =>
        File.WriteAllText(_folder.File(SafetensorsCheckpoint.IndexFileName), "{\"metadata\":{\"total_size\":3},\"weight_map\":{" + weightMapJson + "}}");

    private SafetensorsFormatException Fails() => Assert.Throws<SafetensorsFormatException>(() => SafetensorsCheckpoint.Open(_folder.Path).Dispose());

    [Fact]
    public void Opens_from_folder_index_or_file_and_looks_tensors_up()
    {
        WriteShard("s1.safetensors", "a", "b");
        WriteShard("s2.safetensors", "c");
        WriteIndex("\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\",\"c\":\"s2.safetensors\"");

        foreach (var path in new[] { _folder.Path, _folder.File(SafetensorsCheckpoint.IndexFileName) })
        {
            using var cp = SafetensorsCheckpoint.Open(path);
            Assert.Equal(2, cp.Shards.Count);
            Assert.Equal(3, cp.TotalElementCount);
            Assert.Equal(3, cp.IndexTotalSize);
            Assert.Equal([(byte)'c'], cp.ReadBytes("c"));
            Assert.EndsWith("s2.safetensors", cp.FileOf("c").Path);
            Assert.False(cp.Contains("d"));
            Assert.Equal(K.TensorNotFound, Assert.Throws<SafetensorsFormatException>(() => cp.GetTensor("d")).Kind);
        }
        using var single = SafetensorsCheckpoint.Open(_folder.File("s1.safetensors"));
        Assert.Null(single.IndexPath);
        Assert.Equal(2, single.Tensors.Count);
    }

    [Fact]
    public void Missing_shard_is_named()
    {
        WriteShard("s1.safetensors", "a");
        WriteIndex("\"a\":\"s1.safetensors\",\"b\":\"s2.safetensors\"");
        var ex = Fails();
        Assert.Equal(K.MissingShard, ex.Kind);
        Assert.Contains("s2.safetensors", ex.Message);
        Assert.Contains(SafetensorsCheckpoint.IndexFileName, ex.Message);
    }

    [Fact]
    public void Tensor_in_two_shards_is_refused()
    {
        WriteShard("s1.safetensors", "a", "x");
        WriteShard("s2.safetensors", "b", "x");
        WriteIndex("\"a\":\"s1.safetensors\",\"b\":\"s2.safetensors\",\"x\":\"s1.safetensors\"");
        var ex = Fails();
        Assert.Equal(K.DuplicateShardTensor, ex.Kind);
        Assert.Equal("x", ex.TensorName);
    }

    [Fact]
    public void Index_pointing_at_the_wrong_shard_is_refused()
    {
        WriteShard("s1.safetensors", "a");
        WriteShard("s2.safetensors", "b");
        WriteIndex("\"a\":\"s2.safetensors\",\"b\":\"s2.safetensors\"");
        Assert.Equal(K.ShardMismatch, Fails().Kind);
    }

    [Fact]
    public void Shard_tensor_missing_from_the_index_is_refused()
    {
        WriteShard("s1.safetensors", "a", "z");
        WriteIndex("\"a\":\"s1.safetensors\"");
        var ex = Fails();
        Assert.Equal(K.ShardMismatch, ex.Kind);
        Assert.Equal("z", ex.TensorName);
    }

    [Theory]
    [InlineData("\"a\":\"s1.safetensors\",\"a\":\"s1.safetensors\"", K.DuplicateName)]
    [InlineData("\"a\":\"../s1.safetensors\"", K.InvalidIndex)]
    [InlineData("\"a\":1", K.InvalidIndex)]
    [InlineData("", K.InvalidIndex)]
    public void Malformed_index_is_refused(string weightMap, K kind)
    {
        WriteShard("s1.safetensors", "a");
        WriteIndex(weightMap);
        Assert.Equal(kind, Fails().Kind);
    }

    [Fact]
    public void Folder_without_weights_is_refused()
    {
        File.WriteAllText(_folder.File("config.json"), "{}");
        Assert.Equal(K.MissingShard, Fails().Kind);
    }

    /// <summary>Llama-2-7B's published architecture (its Hugging Face config.json), built here rather than from a preset.</summary>
    private static ModelSpec Llama2_7B() => new()
    {
        ModelType = "llama", NumLayers = 32, HiddenSize = 4096, IntermediateSize = 11008,
        NumHeads = 32, NumKvHeads = 32, VocabSize = 32000, TieWordEmbeddings = false,
    };

    [Fact]
    public void Sparse_llama2_7b_checkpoint_has_the_published_parameter_count()
    {
        var entries = Llama2_7B().Tensors().Select(t => SafetensorsTensorEntry.Zeros(t.Name, SafetensorsDType.BF16, t.Shape));

        var result = SafetensorsShardedWriter.Write(_folder.Path, entries, maxShardBytes: 5_000_000_000, new Dictionary<string, string> { ["format"] = "pt" });

        Assert.Equal(3, result.ShardPaths.Count);
        Assert.Equal("model-00003-of-00003.safetensors", Path.GetFileName(result.ShardPaths[2]));
        using var cp = SafetensorsCheckpoint.Open(_folder.Path);
        Assert.Equal(6_738_415_616L, cp.TotalElementCount);
        Assert.Equal(2 * 6_738_415_616L, cp.IndexTotalSize);
        Assert.Equal(291, cp.Tensors.Count);
        Assert.Equal([32000L, 4096L], cp.GetTensor("lm_head.weight").Shape);
        Assert.True(cp.ReadFloat32("model.norm.weight").All(v => v == 0));
    }
}

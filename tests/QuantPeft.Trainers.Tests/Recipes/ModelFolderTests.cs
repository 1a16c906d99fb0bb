using QuantPeft.Formats;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tests.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Recipes;

public class ModelFolderTests
{
    private static readonly long[,] Ids = { { 4, 8, 15, 16, 23, 31, 2, 9 } };

    // The same tiny model saved twice by the project's writer: once as model.safetensors, once in shards of at most
    // 2 KiB (each tensor of the tiny spec is at most 2 KiB in f32, so every shard holds one or a few tensors).
    private static (string Single, string Sharded) SaveBoth(TempDir dir)
    {
        var spec = TinyModels.Llama();
        using var model = TinyModels.Build(spec, TinyModels.RandomCheckpoint(spec, 31));
        string single = dir.File("single"), sharded = dir.File("sharded");
        ModelFolder.SaveByteLevel(model, single);
        ModelFolder.SaveByteLevel(model, sharded, maxShardBytes: 2048);
        return (single, sharded);
    }

    [Fact]
    public void ShardedAndSingleFileFoldersGiveIdenticalLogits()
    {
        using var dir = new TempDir();
        var (single, sharded) = SaveBoth(dir);
        Assert.True(File.Exists(Path.Combine(single, ModelFolder.WeightsFileName)));
        Assert.False(File.Exists(Path.Combine(single, ModelFolder.IndexFileName)));
        Assert.True(File.Exists(Path.Combine(sharded, ModelFolder.IndexFileName)));
        Assert.False(File.Exists(Path.Combine(sharded, ModelFolder.WeightsFileName)));
        Assert.True(Directory.GetFiles(sharded, "model-*-of-*.safetensors").Length > 3);

        foreach (var factory in new LinearFactory?[] { null, BaseWeights.Factory(WeightFormat.Nf4, true, ScalarType.Float32) })
        {
            var options = new DecoderOptions { ComputeDType = ScalarType.Float32, LinearFactory = factory };
            using var a = ModelFolder.Load(single, ModelFolder.ReadSpec(single), options);
            using var b = ModelFolder.Load(sharded, ModelFolder.ReadSpec(sharded), options);
            using var ids = TinyModels.Ids(Ids);
            using var la = a.call(ids);
            using var lb = b.call(ids);
            Assert.True(la.equal(lb).all().item<bool>());
        }
    }

    [Fact]
    public void ASingleFileSaveOverAShardedFolderRemovesTheStaleIndex()
    {
        using var dir = new TempDir();
        var (_, sharded) = SaveBoth(dir);
        var spec = TinyModels.Llama();
        using var other = TinyModels.Build(spec, TinyModels.RandomCheckpoint(spec, 32));
        ModelFolder.SaveByteLevel(other, sharded);
        Assert.Equal(Path.Combine(sharded, ModelFolder.WeightsFileName), ModelFolder.WeightsPath(sharded));
        using var loaded = ModelFolder.Load(sharded, spec, new DecoderOptions { ComputeDType = ScalarType.Float32 });
        using var ids = TinyModels.Ids(Ids);
        using var expected = other.call(ids);
        using var found = loaded.call(ids);
        Assert.True(expected.equal(found).all().item<bool>());
    }

    [Fact]
    public void AMissingShardIsAnErrorNamingItAndTheIndex()
    {
        using var dir = new TempDir();
        var (_, sharded) = SaveBoth(dir);
        string victim = Directory.GetFiles(sharded, "model-*-of-*.safetensors").OrderBy(p => p, StringComparer.Ordinal).Last();
        File.Delete(victim);
        var e = Assert.ThrowsAny<QuantPeftException>(() => ModelFolder.Load(sharded, TinyModels.Llama(), new DecoderOptions { ComputeDType = ScalarType.Float32 }));
        Assert.Contains(Path.GetFileName(victim), e.Message);
        Assert.Contains(ModelFolder.IndexFileName, e.Message);
    }

    [Fact]
    public void AFolderWithoutWeightsNamesBothAcceptedLayouts()
    {
        using var dir = new TempDir();
        var (single, _) = SaveBoth(dir);
        File.Delete(Path.Combine(single, ModelFolder.WeightsFileName));
        var e = Assert.Throws<ModelException>(() => ModelFolder.Check(single));
        Assert.Contains(ModelFolder.WeightsFileName, e.Message);
        Assert.Contains(ModelFolder.IndexFileName, e.Message);
    }
}

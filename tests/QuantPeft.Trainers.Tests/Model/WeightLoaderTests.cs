using QuantPeft.Formats;
using QuantPeft.Trainers.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Model;

public class WeightLoaderTests
{
    private static readonly long[,] Ids = { { 4, 8, 15, 16, 23, 31 } };

    [Fact]
    public void ParameterNames_AreExactlyTheHuggingFaceKeys()
    {
        foreach (var (tied, bias) in new[] { (false, false), (true, true) })
        {
            var spec = TinyModels.Llama(tied, bias);
            using var model = new CausalLm(spec, new DecoderOptions { ComputeDType = ScalarType.Float32 });
            var names = model.named_parameters().Select(p => p.name).ToList();
            Assert.Equal(spec.Tensors().Select(t => t.Name).OrderBy(n => n, StringComparer.Ordinal),
                names.OrderBy(n => n, StringComparer.Ordinal));
            Assert.Contains("model.layers.1.self_attn.q_proj.weight", names);
            Assert.Empty(model.named_buffers());
        }
    }

    [Fact]
    public void Logits_DoNotDependOnTheOrderTensorsArriveIn()
    {
        var spec = TinyModels.Llama();
        var checkpoint = TinyModels.RandomCheckpoint(spec, 21);
        using var forward = TinyModels.Build(spec, checkpoint);
        using var reversed = TinyModels.Build(spec, checkpoint.Reordered(n => n.Reverse()));
        var rng = new Random(5);
        using var shuffled = TinyModels.Build(spec, checkpoint.Reordered(n => n.OrderBy(_ => rng.Next())));
        using var ids = TinyModels.Ids(Ids);
        using var a = forward.call(ids);
        using var b = reversed.call(ids);
        using var c = shuffled.call(ids);
        Assert.True(a.eq(b).all().item<bool>());
        Assert.True(a.eq(c).all().item<bool>());
    }

    [Fact]
    public void Loader_StreamsEachTensorOnce_InSourceOrder()
    {
        var spec = TinyModels.Llama();
        var checkpoint = TinyModels.RandomCheckpoint(spec, 2).Reordered(n => n.Reverse());
        using var model = TinyModels.Build(spec, checkpoint);
        Assert.Equal(checkpoint.Names, checkpoint.Gets);
    }

    [Fact]
    public void TiedEmbeddings_ShareStorageWithTheHead()
    {
        var spec = TinyModels.Llama(tied: true);
        var checkpoint = TinyModels.RandomCheckpoint(spec, 4);
        using var model = TinyModels.Build(spec, checkpoint);
        var embedding = model.named_parameters().Single(p => p.name == "model.embed_tokens.weight").parameter;
        Assert.Equal(embedding.storage<float>().data_ptr(), model.LmHeadWeight.storage<float>().data_ptr());
        Assert.DoesNotContain(model.named_parameters(), p => p.name == "lm_head.weight");

        // Editing the embedding edits the head: zeroing row 7 zeroes logit 7 everywhere.
        using (no_grad()) embedding[7].zero_();
        using var logits = model.call(TinyModels.Ids(Ids));
        using var column = logits.select(-1, 7);
        Assert.Equal(0f, column.abs().max().item<float>());
    }

    [Fact]
    public void MissingTensor_IsNamed()
    {
        var spec = TinyModels.Llama();
        var source = TinyModels.RandomCheckpoint(spec, 1).Reordered(n => n, drop: "model.layers.1.mlp.up_proj.weight");
        using var model = new CausalLm(spec, new DecoderOptions { ComputeDType = ScalarType.Float32 });
        var ex = Assert.Throws<ModelException>(() => model.LoadWeights(source));
        Assert.IsAssignableFrom<QuantPeftException>(ex);
        Assert.Contains("random-checkpoint", ex.Message);
        Assert.Contains("1 missing", ex.Message);
        Assert.Contains("'model.layers.1.mlp.up_proj.weight'", ex.Message);
        Assert.Empty(source.Gets);   // nothing was copied before the check
    }

    [Fact]
    public void UnexpectedTensor_IsNamed_AndOldRotaryBuffersAreIgnored()
    {
        var spec = TinyModels.Llama();
        var source = TinyModels.RandomCheckpoint(spec, 1);
        source.Add("model.layers.0.self_attn.rotary_emb.inv_freq", [2], [1f, 0.01f]);
        using var model = new CausalLm(spec, new DecoderOptions { ComputeDType = ScalarType.Float32 });
        model.LoadWeights(source);

        source.Add("model.layers.0.self_attn.q_proj.lora_A.weight", [2, 16], new float[32]);
        var ex = Assert.Throws<ModelException>(() => model.LoadWeights(source));
        Assert.Contains("1 unexpected", ex.Message);
        Assert.Contains("'model.layers.0.self_attn.q_proj.lora_A.weight'", ex.Message);
    }

    [Fact]
    public void WrongShape_NamesTensorAndBothShapes()
    {
        var spec = TinyModels.Llama();
        var good = TinyModels.RandomCheckpoint(spec, 1);
        var bad = new DictionarySource("bad.safetensors");
        foreach (var name in good.Names)
            bad.Add(name, name == "model.layers.0.self_attn.k_proj.weight" ? [16, 8] : spec.Tensors().Single(t => t.Name == name).Shape,
                name == "model.layers.0.self_attn.k_proj.weight" ? new float[128] : good.Data(name));
        using var model = new CausalLm(spec, new DecoderOptions { ComputeDType = ScalarType.Float32 });
        var ex = Assert.Throws<ModelException>(() => model.LoadWeights(bad));
        Assert.Equal("bad.safetensors: tensor 'model.layers.0.self_attn.k_proj.weight': expected shape [8, 16], found [16, 8]", ex.Message);
    }

    [Fact]
    public void SequenceLongerThanMaxPositions_NamesBothNumbers()
    {
        var spec = TinyModels.Llama(maxPositions: 4);
        using var model = new CausalLm(spec, new DecoderOptions { ComputeDType = ScalarType.Float32 });
        var ex = Assert.Throws<ModelException>(() => model.call(TinyModels.Ids(Ids)));
        Assert.Contains("sequence length 6", ex.Message);
        Assert.Contains("max_position_embeddings 4", ex.Message);
    }

    [Fact]
    public void UnsupportedArchitecture_IsRejectedAtConstruction()
    {
        var ex = Assert.Throws<ModelException>(() => new CausalLm(TinyModels.Llama() with { ModelType = "gpt2" }));
        Assert.Contains("'gpt2'", ex.Message);
        ex = Assert.Throws<ModelException>(() => new CausalLm(TinyModels.Llama() with { NumKvHeads = 3 }));
        Assert.Contains("num_key_value_heads", ex.Message);
    }
}

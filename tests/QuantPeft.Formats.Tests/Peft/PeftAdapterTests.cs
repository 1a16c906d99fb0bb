using QuantPeft.Formats.Peft;
using QuantPeft.Formats.Safetensors;

namespace QuantPeft.Formats.Tests.Peft;

public sealed class PeftAdapterTests : IDisposable
{
    private readonly TestFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static PeftAdapterConfig Config(bool dora = false) => new()
    {
        PeftType = "LORA", TaskType = "CAUSAL_LM", BaseModelNameOrPath = "meta-llama/Llama-2-7b-hf", InferenceMode = true,
        R = 4, LoraAlpha = 8, LoraDropout = 0.1, TargetModules = PeftModuleSelector.FromNames("q_proj", "v_proj"),
        RankPattern = new Dictionary<string, int> { ["v_proj"] = 2 }, UseDora = dora, PeftVersion = "0.17.1",
    };

    private static byte[] DataOf(string name, long[] shape)
    {
        var data = new byte[SafetensorsDType.BF16.ByteLength(shape)];
        new Random(name.GetHashCode(StringComparison.Ordinal)).NextBytes(data);
        return data;
    }

    private static SafetensorsTensorEntry Bf16(string name, params long[] shape) =>
        SafetensorsTensorEntry.FromBytes(name, SafetensorsDType.BF16, shape, DataOf(name, shape));

    private static List<SafetensorsTensorEntry> Tensors(bool dora = false)
    {
        const string q = "model.layers.0.self_attn.q_proj", v = "model.layers.0.self_attn.v_proj";
        var list = new List<SafetensorsTensorEntry>
        {
            Bf16(LoraTensorNames.LoraA(q), 4, 32), Bf16(LoraTensorNames.LoraB(q), 32, 4),
            Bf16(LoraTensorNames.LoraA(v), 2, 32), Bf16(LoraTensorNames.LoraB(v), 8, 2),
        };
        if (dora)
            list.AddRange([Bf16(LoraTensorNames.MagnitudeVector(q), 32), Bf16(LoraTensorNames.MagnitudeVector(v), 8)]);
        return list;
    }

    [Fact]
    public void Names_follow_peft()
    {
        Assert.Equal("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", LoraTensorNames.LoraA("model.layers.0.self_attn.q_proj"));
        Assert.Equal("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", LoraTensorNames.LoraB("model.layers.0.self_attn.q_proj"));
        Assert.Equal("base_model.model.m.lora_magnitude_vector", LoraTensorNames.MagnitudeVector("m"));
        Assert.True(LoraTensorNames.TryParse("base_model.model.model.embed_tokens.lora_embedding_A", out var module, out var kind));
        Assert.Equal(("model.embed_tokens", LoraTensorKind.EmbeddingA), (module, kind));
        Assert.False(LoraTensorNames.TryParse("base_model.model.lm_head.weight", out _, out _));
    }

    [Fact]
    public void Adapter_round_trips()
    {
        string path = _folder.File("adapter");
        var tensors = Tensors(dora: true);

        PeftAdapter.Save(path, Config(dora: true), tensors);

        Assert.Equal(["adapter"], _folder.Entries());
        using var adapter = PeftAdapter.Load(path);
        Assert.Equal("pt", adapter.Weights.Metadata["format"]);
        var c = adapter.Config;
        Assert.Equal(("LORA", "CAUSAL_LM", "meta-llama/Llama-2-7b-hf", true), (c.PeftType, c.TaskType, c.BaseModelNameOrPath, c.InferenceMode));
        Assert.Equal((4, 8.0, 0.1, true, "0.17.1"), (c.R, c.LoraAlpha, c.LoraDropout, c.UseDora, c.PeftVersion));
        Assert.Equal(["q_proj", "v_proj"], c.TargetModules!.Names!);
        Assert.Equal(2, c.RankPattern["v_proj"]);
        Assert.Empty(adapter.Warnings);
        Assert.Equal([new LoraModule("model.layers.0.self_attn.q_proj", 4, 32, 32, false, true), new LoraModule("model.layers.0.self_attn.v_proj", 2, 32, 8, false, true)], adapter.Modules);
        foreach (var t in tensors)
            Assert.Equal(DataOf(t.Layout.Name, t.Layout.Shape), adapter.Weights.ReadBytes(t.Layout.Name));
    }

    [Fact]
    public void Saving_over_an_adapter_keeps_other_files()
    {
        string path = _folder.File("adapter");
        PeftAdapter.Save(path, Config(), Tensors());
        File.WriteAllText(Path.Combine(path, "README.md"), "notes");

        PeftAdapter.Save(path, Config() with { LoraAlpha = 16 }, Tensors());

        using var adapter = PeftAdapter.Load(path);
        Assert.Equal(16, adapter.Config.LoraAlpha);
        Assert.Equal("notes", File.ReadAllText(Path.Combine(path, "README.md")));
        Assert.Equal(["adapter"], _folder.Entries());
    }

    [Fact]
    public void A_failing_save_leaves_the_old_adapter_untouched_and_no_temporaries()
    {
        string path = _folder.File("adapter");
        PeftAdapter.Save(path, Config(), Tensors());
        var failing = Tensors();
        failing[3] = SafetensorsTensorEntry.FromCallback(failing[3].Layout.Name, SafetensorsDType.BF16, failing[3].Layout.Shape, _ => throw new IOException("disk full"));

        Assert.Throws<IOException>(() => PeftAdapter.Save(path, Config() with { LoraAlpha = 99 }, failing));

        Assert.Equal(["adapter"], _folder.Entries());
        using var adapter = PeftAdapter.Load(path);
        Assert.Equal(8, adapter.Config.LoraAlpha);
    }

    [Fact]
    public void A_failing_first_save_creates_nothing()
    {
        var failing = Tensors();
        failing[0] = SafetensorsTensorEntry.FromCallback(failing[0].Layout.Name, SafetensorsDType.BF16, failing[0].Layout.Shape, _ => throw new IOException("disk full"));

        Assert.Throws<IOException>(() => PeftAdapter.Save(_folder.File("adapter"), Config(), failing));

        Assert.Empty(_folder.Entries());
    }

    private PeftFormatException LoadFails(PeftAdapterConfig config, IEnumerable<SafetensorsTensorEntry> tensors)
    {
        string path = _folder.File("bad");
        Directory.CreateDirectory(path);
        File.WriteAllText(Path.Combine(path, PeftAdapter.ConfigFileName), PeftAdapterConfigJson.Serialize(config));
        SafetensorsWriter.WriteFile(Path.Combine(path, PeftAdapter.WeightsFileName), tensors);
        return Assert.Throws<PeftFormatException>(() => PeftAdapter.Load(path).Dispose());
    }

    [Fact]
    public void Unpaired_lora_A_is_refused()
    {
        var ex = LoadFails(Config(), Tensors().Where(t => !t.Layout.Name.EndsWith("v_proj.lora_B.weight", StringComparison.Ordinal)));
        Assert.Equal(PeftErrorKind.UnpairedLoraTensor, ex.Kind);
        Assert.Equal(LoraTensorNames.LoraA("model.layers.0.self_attn.v_proj"), ex.Key);
        Assert.Contains("adapter_model.safetensors", ex.Message);
    }

    [Fact]
    public void Inconsistent_ranks_between_A_and_B_are_refused()
    {
        var t = Tensors();
        t[1] = Bf16(t[1].Layout.Name, 32, 3);
        Assert.Equal(PeftErrorKind.ShapeMismatch, LoadFails(Config(), t).Kind);
    }

    [Fact]
    public void Rank_that_contradicts_the_config_is_refused()
    {
        var ex = LoadFails(Config() with { RankPattern = new Dictionary<string, int>() }, Tensors());
        Assert.Equal(PeftErrorKind.RankMismatch, ex.Kind);
        Assert.Contains("r = 2", ex.Message);
        Assert.Contains("r = 4", ex.Message);
    }

    [Fact]
    public void Dora_without_magnitudes_is_refused()
    {
        Assert.Equal(PeftErrorKind.MissingMagnitude, LoadFails(Config(dora: true), Tensors()).Kind);
    }

    [Fact]
    public void Magnitude_of_the_wrong_length_is_refused()
    {
        var t = Tensors(dora: true);
        t[5] = Bf16(t[5].Layout.Name, 7);
        Assert.Equal(PeftErrorKind.ShapeMismatch, LoadFails(Config(dora: true), t).Kind);
    }

    [Fact]
    public void Missing_files_are_named()
    {
        string path = _folder.File("empty");
        Directory.CreateDirectory(path);
        Assert.Equal(PeftErrorKind.MissingConfig, Assert.Throws<PeftFormatException>(() => PeftAdapter.Load(path)).Kind);
        File.WriteAllText(Path.Combine(path, PeftAdapter.ConfigFileName), "{\"peft_type\":\"LORA\"}");
        var ex = Assert.Throws<PeftFormatException>(() => PeftAdapter.Load(path));
        Assert.Equal(PeftErrorKind.MissingWeights, ex.Kind);
        Assert.Contains("empty", ex.Message);
    }

    [Fact]
    public void Non_lora_adapters_are_refused_naming_peft_type()
    {
        string path = _folder.File("vera");
        Directory.CreateDirectory(path);
        File.WriteAllText(Path.Combine(path, PeftAdapter.ConfigFileName), "{\"peft_type\":\"VERA\"}");

        var ex = Assert.Throws<PeftFormatException>(() => PeftAdapter.Load(path));

        Assert.Equal(PeftErrorKind.UnsupportedPeftType, ex.Kind);
        Assert.Equal("peft_type", ex.Key);
        Assert.Contains("VERA", ex.Message);
    }
}

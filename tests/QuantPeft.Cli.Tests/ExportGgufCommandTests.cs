namespace QuantPeft.Cli.Tests;

/// <summary><c>qpeft export --format gguf</c> from the command line: the file, and bad input that leaves nothing behind.</summary>
public class ExportGgufCommandTests
{
    [Fact]
    public void WritesAGgufFileOfThePlainDemoModel()
    {
        using var dir = new TempFolder();
        string file = Path.Combine(dir.Path, "demo.gguf");
        var r = CliHarness.Run("export", "--model", CliHarness.DemoModel(), "--format", "gguf", "--quant", "q8_0", "-o", file);
        Assert.Equal(0, r.Exit);
        Assert.Contains("gguf q8_0", r.Out);
        byte[] head = File.ReadAllBytes(file)[..8];
        Assert.Equal("GGUF"u8.ToArray(), head[..4]);
        Assert.Equal(3, BitConverter.ToInt32(head, 4));
        // The Ollama Modelfile beside it: FROM the file; the demo model declares no chat template, so no TEMPLATE, and the console says so.
        string modelfile = Path.Combine(dir.Path, "demo.Modelfile");
        Assert.Equal(2, Directory.GetFiles(dir.Path).Length);
        Assert.Equal("FROM ./demo.gguf\n", File.ReadAllText(modelfile));
        Assert.Contains("no chat_template", r.Out);
    }

    [Fact]
    public void KQuantsGoThroughLlamaCppsQuantizerAndLeaveNoIntermediateFile()
    {
        using var dir = new TempFolder();
        string file = Path.Combine(dir.Path, "demo.gguf");
        var r = CliHarness.Run("export", "--model", CliHarness.DemoModel(), "--format", "gguf", "--quant", "q4_k_m", "-o", file);
        Assert.True(r.Exit == 0, r.Err);
        long f16Bytes = 1_781_696;   // the demo model's f16 file
        Assert.InRange(new FileInfo(file).Length, 100_000, f16Bytes / 2);
        Assert.Equal(["demo.Modelfile", "demo.gguf"], Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("--quant", "q3_k_s", "error: --quant")]
    [InlineData("--format", "onnx", "error: --format")]
    public void BadFlagsExitOneAndWriteNothing(string flag, string value, string message)
    {
        using var dir = new TempFolder();
        string file = Path.Combine(dir.Path, "demo.gguf");
        string[] format = flag == "--format" ? [] : ["--format", "gguf"];
        var r = CliHarness.Run(["export", "--model", CliHarness.DemoModel(), .. format, flag, value, "-o", file]);
        Assert.Equal(1, r.Exit);
        Assert.StartsWith(message, r.Err);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    [Fact]
    public void AnExistingOutputIsRefusedAndKept()
    {
        using var dir = new TempFolder();
        string file = Path.Combine(dir.Path, "demo.gguf");
        File.WriteAllText(file, "keep");
        var r = CliHarness.Run("export", "--model", CliHarness.DemoModel(), "--format", "gguf", "-o", file);
        Assert.Equal(1, r.Exit);
        Assert.Contains(file, r.Err);
        Assert.Equal("keep", File.ReadAllText(file));
        Assert.Single(Directory.GetFileSystemEntries(dir.Path));
    }

    // Gemma configs llama.cpp would run with other attention than they were trained with: it scales Gemma's attention by
    // head_dim (hidden / heads at 27B) whatever query_pre_attn_scalar says, and fixes which layers are local (every
    // other one in gemma2, five of six in gemma3). Both configs are the tiny family fixtures' (make_families.py).
    [Theory]
    [InlineData("gemma2", """{"architectures": ["Gemma2ForCausalLM"], "attn_logit_softcapping": 2.0, "final_logit_softcapping": 3.0, "head_dim": 12, "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 16, "intermediate_size": 24, "layer_types": ["sliding_attention", "full_attention"], "max_position_embeddings": 64, "model_type": "gemma2", "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "query_pre_attn_scalar": 10, "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "sliding_window": 4, "tie_word_embeddings": true, "vocab_size": 48}""",
        "error: config.json: model_type 'gemma2': query_pre_attn_scalar 10 differs from the 12")]
    [InlineData("gemma3", """{"architectures": ["Gemma3ForCausalLM"], "head_dim": 12, "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 16, "intermediate_size": 24, "layer_types": ["sliding_attention", "sliding_attention", "full_attention"], "max_position_embeddings": 64, "model_type": "gemma3_text", "num_attention_heads": 4, "num_hidden_layers": 3, "num_key_value_heads": 2, "query_pre_attn_scalar": 12, "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000.0, "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "rope_theta": 1000000.0, "sliding_window": 4, "tie_word_embeddings": true, "vocab_size": 48}""",
        "error: config.json: model_type 'gemma3_text': layer_types [sliding, sliding, full]")]
    [InlineData("gemma2-nowindow", """{"architectures": ["Gemma2ForCausalLM"], "head_dim": 12, "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 16, "intermediate_size": 24, "max_position_embeddings": 64, "model_type": "gemma2", "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "query_pre_attn_scalar": 12, "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "sliding_window": null, "tie_word_embeddings": true, "vocab_size": 48}""",
        "error: config.json: model_type 'gemma2': no sliding_window")]
    public void GemmaConfigsThatLlamaCppWouldReadOtherwiseAreRefused(string name, string config, string message)
    {
        using var dir = new TempFolder();
        string model = Path.Combine(dir.Path, name);
        Directory.CreateDirectory(model);
        File.WriteAllText(Path.Combine(model, "config.json"), config);
        byte[] header = "{}"u8.ToArray();   // a weights file with no tensors: the refusal comes before any weight is read
        File.WriteAllBytes(Path.Combine(model, "model.safetensors"), [.. BitConverter.GetBytes((long)header.Length), .. header]);
        string file = Path.Combine(dir.Path, "out", $"{name}.gguf");
        var r = CliHarness.Run("export", "--model", model, "--format", "gguf", "-o", file);
        Assert.Equal(1, r.Exit);
        Assert.StartsWith(message, r.Err);
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "out")));
    }
}

using System.Text;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Generation;
using QuantPeft.Trainers.Tokenizers;
using QuantPeft.Cli.Commands;
using QuantPeft.Trainers.Adapters;
using static TorchSharp.torch;

namespace QuantPeft.Cli.Tests;

/// <summary><c>qpeft generate</c> and <c>qpeft chat</c> on the demo model: determinism, the chat's kept cache against a recomputed conversation, commands, bad input.</summary>
public class GenerateChatCommandTests
{
    [Fact]
    public void GreedyGenerateIsDeterministicAndIsTheGreedyContinuation()
    {
        var a = CliHarness.Run("generate", CliHarness.DemoModel(), "--prompt", "The ", "--max-new-tokens", "24");
        var b = CliHarness.Run("generate", CliHarness.DemoModel(), "--prompt", "The ", "--max-new-tokens", "24");
        Assert.Equal(0, a.Exit);
        Assert.Equal(a.Out, b.Out);
        Assert.Contains("24 tokens in", a.Err);
        // The greedy continuation recomputing the whole prefix per token, decoded.
        using var loaded = GenerationModel.Load(CliHarness.DemoModel(), null, WeightFormat.Bf16, ScalarType.Float32);
        int[] prompt = [ByteLevelTokenizer.Bos, .. "The "u8.ToArray().Select(x => (int)x)];
        var greedy = QuantPeft.Trainers.Recipes.GreedyDecoder.Generate(loaded.Model, [prompt], 24, null, ByteLevelTokenizer.Size)[0];
        Assert.Equal(ByteLevelTokenizer.Instance.Decode(greedy) + Environment.NewLine, a.Out);
    }

    [Fact]
    public void SampledGenerateRepeatsWithTheSameSeedAndDiffersWithAnother()
    {
        string[] args = ["generate", CliHarness.DemoModel(), "--prompt", "The ", "--max-new-tokens", "40", "--temperature", "1.0", "--top-p", "0.95", "--top-k", "50"];
        var a = CliHarness.Run([.. args, "--seed", "1"]);
        var b = CliHarness.Run([.. args, "--seed", "1"]);
        var c = CliHarness.Run([.. args, "--seed", "2"]);
        Assert.Equal(a.Out, b.Out);
        Assert.NotEqual(a.Out, c.Out);
    }

    [Theory]
    [InlineData("--temperature", "-1", "--temperature")]
    [InlineData("--top-p", "0", "--top-p")]
    [InlineData("--max-new-tokens", "0", "--max-new-tokens")]
    [InlineData("--weights", "int3", "--weights")]
    [InlineData("--weights", "lq-lora:x", "--weights")]
    [InlineData("--weights", "lq-lora:3", "--weights lq-lora:3: needs --adapter")]
    public void BadFlagsExitOneNamingTheFlag(string flag, string value, string named)
    {
        var r = CliHarness.Run("generate", CliHarness.DemoModel(), "--prompt", "x", flag, value);
        Assert.Equal(1, r.Exit);
        Assert.StartsWith($"error: {named}", r.Err);
    }

    [Fact]
    public void MessagesFileErrorsNameTheFile()
    {
        using var dir = new TempFolder();
        string path = System.IO.Path.Combine(dir.Path, "m.json");
        File.WriteAllText(path, """[{"role": "robot", "content": "hi"}]""");
        var r = CliHarness.Run("generate", CliHarness.DemoModel(), "--messages", path);
        Assert.Equal(1, r.Exit);
        Assert.Contains(path, r.Err);
        Assert.Contains("message 0", r.Err);
        var both = CliHarness.Run("generate", CliHarness.DemoModel(), "--messages", path, "--prompt", "x");
        Assert.Equal(1, both.Exit);
    }

    [Fact]
    public void ChatKeepsTheConversationInTheCacheAndResetStartsOver()
    {
        using var loaded = GenerationModel.Load(CliHarness.DemoModel(), null, WeightFormat.Bf16, ScalarType.Float32);
        var template = ChatTemplate.Default;
        var output = new StringWriter();
        ChatCommand.Run(loaded, template, new SamplingOptions(), 16, new StringReader("hello\nhow are you\n/reset\nhello\n/exit\nnot read\n"), output);

        // The answers recomputed without a kept cache: turn 2 is generated from the whole conversation in one prompt
        // (turn 1, its answer, the EOS that closes it, turn 2).
        var tokenizer = loaded.Tokenizer;
        int[] first = ChatPrompt.Encode(template, tokenizer, [new ChatMessage("user", "hello")]);
        using var fresh = new TextGenerator(loaded.Model, tokenizer.VocabSize);
        var answer1 = fresh.Generate(first, 16, new SamplingOptions(), new HashSet<int>()).Tokens.ToArray();
        fresh.Reset();
        int[] whole = [.. first, .. answer1, tokenizer.EosId!.Value, .. ChatPrompt.Encode(template, tokenizer, [new ChatMessage("user", "how are you")], withBos: false)];
        var answer2 = fresh.Generate(whole, 16, new SamplingOptions(), new HashSet<int>()).Tokens.ToArray();

        string nl = Environment.NewLine, stats = "[16 tokens, # tokens/s, token limit]";
        string expected = $"qpeft chat: {CliHarness.DemoModel()}, template Default ({template.Reason}). /system TEXT, /reset, /exit{nl}"
            + $"> {tokenizer.Decode(answer1)}{nl}{stats}{nl}"
            + $"> {tokenizer.Decode(answer2)}{nl}{stats}{nl}"
            + $"> (conversation reset){nl}"
            + $"> {tokenizer.Decode(answer1)}{nl}{stats}{nl}"
            + "> ";
        string actual = System.Text.RegularExpressions.Regex.Replace(output.ToString(), @"\[16 tokens, [0-9.]+ tokens/s", "[16 tokens, # tokens/s");
        Assert.Equal(expected, actual);
    }
}

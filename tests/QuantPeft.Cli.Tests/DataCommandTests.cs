using System.Text.Json;

namespace QuantPeft.Cli.Tests;

/// <summary><c>qpeft data preview</c> and the data errors of <c>qpeft train</c>, end to end.</summary>
public class DataCommandTests
{
    private static string ChatModel(TempFolder dir, string template)
    {
        string folder = Path.Combine(dir.Path, "model");
        Directory.CreateDirectory(folder);
        foreach (string f in Directory.GetFiles(CliHarness.DemoModel())) File.Copy(f, Path.Combine(folder, Path.GetFileName(f)));
        File.WriteAllText(Path.Combine(folder, "chat_template.jinja"), template);
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"eos_token": "</s>"}""");
        return folder;
    }

    [Fact]
    public void PreviewJsonGivesTextTokensAndTrainedOffsets()
    {
        using var dir = new TempFolder();
        string model = ChatModel(dir, "{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}");
        string data = Path.Combine(dir.Path, "d.jsonl");
        File.WriteAllText(data, "{\"conversations\": [{\"from\": \"human\", \"value\": \"hi\"}, {\"from\": \"gpt\", \"value\": \"yo\"}]}\n{\"text\": \"plain\"}\n");
        var (exit, output, err) = CliHarness.Run("data", "preview", model, "--data", data, "--rows", "5", "--json", "--seq", "64");
        Assert.True(exit == 0, err);
        using var doc = JsonDocument.Parse(output);
        JsonElement first = doc.RootElement.GetProperty("examples")[0];
        Assert.Equal(1, first.GetProperty("line").GetInt32());
        string text = first.GetProperty("text").GetString()!;
        Assert.Equal("<user>hi</user><assistant>yo</assistant>", text);
        // Hand-derived: the turn after the generation prompt "<user>hi</user><assistant>" is "yo</assistant>".
        JsonElement span = first.GetProperty("trained")[0];
        Assert.Equal("yo</assistant>", text[span[0].GetInt32()..span[1].GetInt32()]);
        // Byte-level tokens: the demo tokenizer adds BOS to text records but the template writes none; no EOS after a templated chat.
        Assert.Equal(text.Length, first.GetProperty("tokens").GetInt32());
        JsonElement totals = doc.RootElement.GetProperty("totals");
        Assert.Equal(2, totals.GetProperty("examples").GetInt32());
        Assert.Equal(0, totals.GetProperty("dropped").GetInt32());
    }

    [Fact]
    public void TemplateThatRaisesExitsOneNamingFileLineAndTemplate()
    {
        using var dir = new TempFolder();
        string model = ChatModel(dir, "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for m in messages %}{{ m.content }}{% endfor %}");
        string data = Path.Combine(dir.Path, "d.jsonl");
        File.WriteAllText(data, "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}\n{\"messages\": [{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}\n");
        var (exit, output, err) = CliHarness.Run("data", "preview", model, "--data", data, "--seq", "64");
        Assert.Equal(1, exit);
        Assert.Equal("", output);
        Assert.Equal($"error: dataset '{data}': 1 bad line(s): line 2: chat template '{Path.Combine(model, "chat_template.jinja")}' line 1: the template raised: System role not supported",
            err.TrimEnd());
    }

    [Theory]
    [InlineData("{\"text\": \"\\ud800\"}", "line 1: field 'text' holds an escaped lone surrogate")]
    [InlineData("{\"conversations\": [{\"from\": \"bot\", \"value\": \"x\"}]}", "line 1: field 'conversations[0].from': expected human, gpt or system, found \"bot\"")]
    [InlineData("{\"instruction\": \"Add\"}", "line 1: missing field 'output'")]
    public void TrainRejectsBadLinesWithExitOne(string line, string expected)
    {
        using var dir = new TempFolder();
        string data = Path.Combine(dir.Path, "bad.jsonl");
        File.WriteAllText(data, line + "\n");
        var (exit, _, err) = CliHarness.Run("train", "--data", data, "--steps", "1", "-o", Path.Combine(dir.Path, "run"));
        Assert.Equal(1, exit);
        Assert.StartsWith($"error: dataset '{data}': 1 bad line(s): {expected}", err);
        Assert.DoesNotContain("internal error", err);
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "run")));
    }

    [Theory]
    [InlineData("on", 2, 0.75)]
    [InlineData("off", 4, 0.375)]
    [InlineData(null, 2, 0.75)]   // plain text packs by default
    public void PreviewHonoursPackingAsTrainDoes(string? packing, int rows, double density)
    {
        // Four text records of two letters: B x x E = 4 tokens = 3 positions each. Rows of 8 hold two of them (6 positions):
        // packed, 2 rows and 12 / 16 = 75 % of the positions real; padded, 4 rows and 12 / 32 = 37.5 %.
        using var dir = new TempFolder();
        string data = Path.Combine(dir.Path, "t.jsonl");
        File.WriteAllText(data, "{\"text\": \"aa\"}\n{\"text\": \"bb\"}\n{\"text\": \"cc\"}\n{\"text\": \"dd\"}\n");
        string[] args = ["data", "preview", "--data", data, "--json", "--seq", "8", .. packing is null ? Array.Empty<string>() : ["--packing", packing]];
        var (exit, output, err) = CliHarness.Run(args);
        Assert.True(exit == 0, err);
        using var doc = JsonDocument.Parse(output);
        JsonElement totals = doc.RootElement.GetProperty("totals");
        Assert.Equal(rows, totals.GetProperty("rows").GetInt32());
        Assert.Equal(packing ?? "on", totals.GetProperty("packing").GetString());
        Assert.Equal(density, totals.GetProperty("density").GetDouble(), 6);
        Assert.Equal(12, totals.GetProperty("tokens").GetInt32());
    }

    [Fact]
    public void ChatDataIsPaddedByDefault()
    {
        using var dir = new TempFolder();
        string data = Path.Combine(dir.Path, "c.jsonl");
        File.WriteAllText(data, "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"c\", \"completion\": \"d\"}\n");
        var (exit, output, err) = CliHarness.Run("data", "preview", "--data", data, "--json", "--seq", "8");
        Assert.True(exit == 0, err);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal("off", doc.RootElement.GetProperty("totals").GetProperty("packing").GetString());
        Assert.Equal(2, doc.RootElement.GetProperty("totals").GetProperty("rows").GetInt32());
    }

    [Fact]
    public void TrainPacksTextAndReportsRowsAndDensity()
    {
        // 20 records "xxxx" (B x x x x E = 6 tokens = 5 positions) at --seq 16: 18 train records (10 % held out) pack three
        // to a row: 6 rows, 90 of 96 positions real (93.8 %); the plan prices the mask (packed_rows).
        using var dir = new TempFolder();
        string data = Path.Combine(dir.Path, "t.jsonl"), run = Path.Combine(dir.Path, "run");
        File.WriteAllText(data, string.Concat(Enumerable.Repeat("{\"text\": \"xxxx\"}\n", 20)));
        var (exit, stdout, err) = CliHarness.Run("train", "--data", data, "--steps", "2", "--seq", "16", "--packing", "on", "-o", run);
        Assert.True(exit == 0, err + stdout);
        string line = "packing on: 18 examples in 6 rows, density 93.8 %";
        Assert.Contains(line, stdout);
        Assert.Contains(line, File.ReadAllText(Path.Combine(run, "report.md")));
        using var plan = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "plan.json")));
        Assert.True(plan.RootElement.GetProperty("workload").GetProperty("packed_rows").GetBoolean());
    }

    [Theory]
    [InlineData("data", "preview")]
    [InlineData("train")]
    public void UnknownPackingIsAOneLineFlagError(params string[] verb)
    {
        using var dir = new TempFolder();
        string data = Path.Combine(dir.Path, "t.jsonl");
        File.WriteAllText(data, "{\"text\": \"aa\"}\n");
        string run = Path.Combine(dir.Path, "run");
        string[] args = verb[0] == "train" ? [.. verb, "--data", data, "--packing", "maybe", "-o", run] : [.. verb, "--data", data, "--packing", "maybe"];
        var (exit, _, err) = CliHarness.Run(args);
        Assert.Equal(1, exit);
        Assert.Equal("error: --packing: expected on or off, found 'maybe'", Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries)).Trim());
        Assert.False(Directory.Exists(run));
    }

    [Fact]
    public void PackingIsRefusedForPreferenceRuns()
    {
        using var dir = new TempFolder();
        string data = Path.Combine(dir.Path, "p.jsonl"), run = Path.Combine(dir.Path, "run");
        File.WriteAllText(data, "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n");
        var (exit, _, err) = CliHarness.Run("train", "--task", "dpo", "--data", data, "--packing", "on", "-o", run);
        Assert.Equal(1, exit);
        Assert.Contains("--packing: preference runs (--task dpo)", Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }

    [Fact]
    public void UnknownTruncationIsAFlagError()
    {
        var (exit, _, err) = CliHarness.Run("data", "preview", "--data", "x.jsonl", "--truncation", "middle");
        Assert.Equal(1, exit);
        Assert.Contains("--truncation: expected error, keep-start or drop, found 'middle'", err);
    }
}

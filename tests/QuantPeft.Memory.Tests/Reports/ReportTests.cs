using System.Text.Json;
using QuantPeft.Formats;
using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;
using QuantPeft.Memory.Reports;

namespace QuantPeft.Memory.Tests.Reports;

public sealed class ReportTests
{
    private static TrainingPlan Plan(long vram) => Planner.Plan(ModelPresets.Get("tinyllama-1.1b"), new Workload(1024),
        new Budget { Vram = vram }, new Constraints { Method = TrainingMethod.Lora, Batch = 1 }, modelName: "tinyllama-1.1b");

    [Fact]
    public void JsonHasTheDocumentedShape()
    {
        TrainingPlan plan = Plan(6L << 30);
        using var doc = JsonDocument.Parse(PlanJson.Write(plan));
        JsonElement root = doc.RootElement;
        Assert.Equal(plan.Candidates.Count, root.GetProperty("candidates").GetArrayLength());
        Assert.Equal(0, root.GetProperty("chosen").GetInt32());
        JsonElement first = root.GetProperty("candidates")[0];
        Assert.True(first.GetProperty("fits").GetBoolean());
        long sum = first.GetProperty("breakdown").EnumerateObject().Sum(p => p.Value.GetInt64());
        Assert.Equal(first.GetProperty("peak_bytes").GetInt64(), sum);
        Assert.Equal("lora", first.GetProperty("strategy").GetProperty("method").GetString());
        foreach (MemoryComponent m in MemoryComponents.DeviceOrder)
            Assert.True(first.GetProperty("breakdown").TryGetProperty(m.JsonName(), out _));
    }

    [Fact]
    public void JsonChosenIsNullAndOverflowsAreListedWhenNothingFits()
    {
        TrainingPlan plan = Plan(1L << 30);
        using var doc = JsonDocument.Parse(PlanJson.Write(plan));
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("chosen").ValueKind);
        JsonElement overflow = doc.RootElement.GetProperty("candidates")[0].GetProperty("overflows")[0];
        Assert.Equal("vram", overflow.GetProperty("budget").GetString());
        Assert.True(overflow.GetProperty("over_by_bytes").GetInt64() > 0);
    }

    [Fact]
    public void MarkdownListsCandidatesAndTheBreakdown()
    {
        string md = PlanMarkdown.Write(Plan(6L << 30), top: 5);
        Assert.Contains("| # | strategy |", md);
        Assert.Contains("| base_weights |", md);
        Assert.Contains("chosen: **#0", md);
    }

    [Fact]
    public void HtmlEmbedsAnSvgChart()
    {
        string html = PlanHtml.Write(Plan(6L << 30), top: 4);
        Assert.Contains("<svg", html);
        Assert.Contains("</html>", html);
        Assert.Contains("budget", html);
    }

    [Fact]
    public void AtomicWriteReplacesTheFileAndLeavesNoTemporary()
    {
        string dir = Directory.CreateTempSubdirectory("qpeft-plan").FullName;
        try
        {
            string path = Path.Combine(dir, "plan.json");
            File.WriteAllText(path, "old");
            AtomicFile.WriteAllText(path, "new");
            Assert.Equal("new", File.ReadAllText(path));
            Assert.Single(Directory.GetFiles(dir));
            Assert.Throws<DirectoryNotFoundException>(() => AtomicFile.WriteAllText(Path.Combine(dir, "missing", "x.json"), "x"));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}

using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Tests.Planning;

public class OptimizerNameTests
{
    [Fact]
    public void TheNamesAreTheDocumentedCommandLineSpellings()
    {
        // docs/optimizers.md and the --optimizer help; the paged and 8-bit names follow bitsandbytes' class names.
        Assert.Equal(["adamw", "adamw-8bit", "paged-adamw", "paged-adamw-8bit", "galore", "galore-8bit", "natural-galore"], Knob.OptimizerNames);
    }

    [Fact]
    public void EveryOptimizerHasOneNameThatParsesBackToIt()
    {
        var kinds = Enum.GetValues<OptimizerKind>();
        Assert.Equal(kinds.Length, Knob.OptimizerNames.Count);
        Assert.Equal(kinds.Length, kinds.Select(Knob.Name).Distinct().Count());
        foreach (var kind in kinds)
        {
            string name = Knob.Name(kind);
            Assert.Equal(kind, Knob.ParseOptimizer(name));
            Assert.Equal(kind, Knob.ParseOptimizer($"  {name.ToUpperInvariant()} "));
        }
    }

    [Fact]
    public void AnUnknownNameIsRejectedWithTheFlagAndEveryKnownName()
    {
        var e = Assert.Throws<PlanningException>(() => Knob.ParseOptimizer("adam-9bit", "--optimizer"));
        Assert.StartsWith("--optimizer: ", e.Message);
        Assert.Contains("'adam-9bit'", e.Message);
        foreach (string name in Knob.OptimizerNames) Assert.Contains(name, e.Message);
    }
}

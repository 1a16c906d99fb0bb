using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Planning.Methods;

namespace QuantPeft.Memory.Tests.Planning;

public class MethodRegistryTests
{
    [Fact]
    public void EveryMethodIsRegisteredOnceUnderAUniqueNameThatParsesBack()
    {
        Assert.Equal(Enum.GetValues<TrainingMethod>(), MethodRegistry.All.Select(d => d.Method));
        Assert.Equal(MethodRegistry.All.Count, MethodRegistry.All.Select(d => d.Name).Distinct().Count());
        foreach (var d in MethodRegistry.All)
        {
            Assert.Equal(d.Method, Knob.ParseMethod(d.Name));
            Assert.Equal(d.Name, Knob.Name(d.Method));
            Assert.Same(d, MethodRegistry.Of(d.Method));
        }
    }

    [Fact]
    public void AnUnknownMethodNamesEveryRegisteredOne()
    {
        var e = Assert.Throws<PlanningException>(() => Knob.ParseMethod("bone"));
        Assert.Equal("--method: expected one of full, lora, pissa, osora, vera, dora, lisa, galore, natural-galore, loram; found 'bone'", e.Message);
    }

    // docs/strategies.md, "Method defaults".
    [Theory]
    [InlineData("lora", "adamw", 3e-3)]
    [InlineData("vera", "adamw", 3e-2)]
    [InlineData("osora", "adamw", 3e-2)]
    [InlineData("galore", "galore", 3e-3)]
    [InlineData("natural-galore", "natural-galore", 3e-3)]
    public void TheDescriptorCarriesTheMethodsDefaults(string method, string optimizer, double lr)
    {
        var d = MethodRegistry.Of(Knob.ParseMethod(method));
        Assert.Equal(optimizer, Knob.Name(d.ImpliedOptimizer));
        Assert.Equal(lr, d.DefaultLearningRate);
    }
}

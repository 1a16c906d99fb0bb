using QuantPeft.Trainers.Data.Templates;

namespace QuantPeft.Trainers.Tests.Data.Templates;

/// <summary>
/// Real model templates rendered by QuantPeft must be byte-identical to what Python's jinja2, set up as transformers
/// sets it up, rendered from the same files (tests/fixtures/chat-templates/render_expected.py), and must raise where
/// jinja2 raised, with the same message.
/// </summary>
public class ChatTemplateFixtureTests
{
    public static TheoryData<string, string> TemplateCases()
    {
        var data = new TheoryData<string, string>();
        foreach (string t in TemplateFixtures.TemplateNames())
            foreach (string c in TemplateFixtures.Cases().Keys)
                data.Add(t, c);
        return data;
    }

    [Theory]
    [MemberData(nameof(TemplateCases))]
    public void RendersByteIdenticalToJinja2(string template, string caseName)
    {
        string dir = Path.Combine(TemplateFixtures.Folder, "expected", template);
        string expectedText = Path.Combine(dir, caseName + ".txt"), expectedRaise = Path.Combine(dir, caseName + ".raises");
        var variables = TemplateFixtures.Cases()[caseName];
        JinjaTemplate t = TemplateFixtures.Load(template);
        if (File.Exists(expectedText))
        {
            string actual = t.Render(variables, () => TemplateFixtures.Now);
            Assert.Equal(File.ReadAllText(expectedText), actual);
        }
        else
        {
            var e = Assert.Throws<TemplateException>(() => t.Render(variables, () => TemplateFixtures.Now));
            Assert.True(e.Raised, e.Message);
            Assert.Equal($"the template raised: {File.ReadAllText(expectedRaise)}", e.Problem);
            Assert.Equal(template + ".jinja", e.TemplateName);
            Assert.True(e.Line > 0);
        }
    }

    [Fact]
    public void EveryTemplateHasEveryCaseRendered()
    {
        // The expected files are checked in; a template without them would pass vacuously.
        Assert.True(TemplateFixtures.TemplateNames().Count() >= 8);
        foreach (string t in TemplateFixtures.TemplateNames())
            foreach (string c in TemplateFixtures.Cases().Keys)
                Assert.True(File.Exists(Path.Combine(TemplateFixtures.Folder, "expected", t, c + ".txt"))
                    || File.Exists(Path.Combine(TemplateFixtures.Folder, "expected", t, c + ".raises")), $"{t}/{c}");
    }
}

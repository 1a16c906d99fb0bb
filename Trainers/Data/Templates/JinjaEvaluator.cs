using System.Text;

namespace QuantPeft.Trainers.Data.Templates;

/// <summary>
/// Runs a parsed template: statements write to one output, expressions follow Python semantics, and scopes follow
/// Jinja's rules (a <c>for</c> body and a macro have their own; <c>if</c> does not; <c>namespace</c> attributes cross them).
/// </summary>
internal sealed class JinjaEvaluator
{
    private enum Flow { Normal, Break, Continue }

    private sealed class Scope(Scope? parent)
    {
        public Dictionary<string, object?> Vars { get; } = new(StringComparer.Ordinal);

        public Scope? Parent { get; } = parent;

        public bool TryGet(string name, out object? value)
        {
            for (Scope? s = this; s is not null; s = s.Parent)
                if (s.Vars.TryGetValue(name, out value)) return true;
            value = null;
            return false;
        }
    }

    private readonly string _name;
    private readonly Func<DateTime> _now;

    public JinjaEvaluator(string name, Func<DateTime> now)
    {
        _name = name;
        _now = now;
    }

    public string Render(IReadOnlyList<Node> nodes, IReadOnlyDictionary<string, object?> variables)
    {
        var globals = new Scope(null);
        foreach (var (k, v) in Globals()) globals.Vars[k] = v;
        var root = new Scope(globals);
        foreach (var (k, v) in variables) root.Vars[k] = v;
        var output = new StringBuilder();
        try
        {
            if (Execute(nodes, root, output) != Flow.Normal) throw Fail("'{% break %}' or '{% continue %}' outside a loop", nodes[0].Line);
        }
        catch (TemplateException e) when (e.TemplateName.Length == 0)
        {
            throw new TemplateException(_name, e.Line, e.Problem, e.Raised);
        }
        return output.ToString();
    }

    private TemplateException Fail(string problem, int line) => new(_name, line, problem);

    private IEnumerable<(string, object?)> Globals()
    {
        yield return ("range", new Callable("range", (p, k, line) =>
        {
            var a = new JinjaArguments(p, k, "range", _name, line);
            if (p.Count is < 1 or > 3 || k.Count > 0) throw a.Fail("takes 1 to 3 positional arguments");
            long start = p.Count == 1 ? 0 : a.Integer(0, "start", 0);
            long stop = p.Count == 1 ? a.Integer(0, "stop", 0) : a.Integer(1, "stop", 0);
            long step = p.Count == 3 ? a.Integer(2, "step", 1) : 1;
            if (step == 0) throw a.Fail("step must not be zero");
            var list = new List<object?>();
            for (long i = start; step > 0 ? i < stop : i > stop; i += step)
            {
                list.Add(i);
                if (list.Count > 1_000_000) throw a.Fail("more than a million items");
            }
            return list;
        }));
        yield return ("namespace", new Callable("namespace", (p, k, line) =>
        {
            var ns = new Namespace();
            foreach (object? x in p)
            {
                if (x is not Dictionary<string, object?> d) throw Fail("namespace() takes a mapping or keyword arguments", line);
                foreach (var (key, value) in d) ns[key] = value;
            }
            foreach (var (key, value) in k) ns[key] = value;
            return ns;
        }));
        yield return ("dict", new Callable("dict", (p, k, line) =>
        {
            var d = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (object? x in p)
            {
                if (x is not Dictionary<string, object?> m) throw Fail("dict() takes a mapping or keyword arguments", line);
                foreach (var (key, value) in m) d[key] = value;
            }
            foreach (var (key, value) in k) d[key] = value;
            return d;
        }));
        yield return ("raise_exception", new Callable("raise_exception", (p, _, line) =>
            throw new TemplateException(_name, line, $"the template raised: {(p.Count > 0 ? JinjaValues.Str(p[0]) : "")}", raised: true)));
        yield return ("strftime_now", new Callable("strftime_now", (p, _, line) =>
            Strftime.Format(_now(), p.Count > 0 && p[0] is string f ? f : throw Fail("strftime_now needs a format string", line), m => Fail(m, line))));
    }

    private Flow Execute(IReadOnlyList<Node> nodes, Scope scope, StringBuilder output)
    {
        foreach (Node node in nodes)
        {
            Flow flow = Execute(node, scope, output);
            if (flow != Flow.Normal) return flow;
        }
        return Flow.Normal;
    }

    private Flow Execute(Node node, Scope scope, StringBuilder output)
    {
        switch (node)
        {
            case TextNode t:
                output.Append(t.Text);
                return Flow.Normal;
            case PrintNode p:
                output.Append(JinjaValues.Str(Eval(p.Value, scope)));
                return Flow.Normal;
            case IfNode i:
                foreach (var (condition, body) in i.Branches)
                    if (condition is null || JinjaValues.Truthy(Eval(condition, scope)))
                        return Execute(body, scope, output);
                return Flow.Normal;
            case ForNode f:
                return For(f, scope, output);
            case SetNode s:
                Set(s, scope);
                return Flow.Normal;
            case SetBlockNode sb:
            {
                var inner = new StringBuilder();
                Execute(sb.Body, scope, inner);
                scope.Vars[sb.Target] = inner.ToString();
                return Flow.Normal;
            }
            case MacroNode m:
                scope.Vars[m.Name] = Macro(m, scope);
                return Flow.Normal;
            case LoopControlNode c:
                return c.Break ? Flow.Break : Flow.Continue;
            case GenerationNode g:
                return Execute(g.Body, scope, output);
            case FilterBlockNode fb:
            {
                var inner = new StringBuilder();
                Flow flow = Execute(fb.Body, scope, inner);
                output.Append(JinjaValues.Str(JinjaFilters.Apply(fb.Filter, inner.ToString(), Args(fb.Args, scope, $"filter '{fb.Filter}'", fb.Line))));
                return flow;
            }
            default:
                throw Fail($"unsupported node {node.GetType().Name}", node.Line);
        }
    }

    private Flow For(ForNode f, Scope scope, StringBuilder output)
    {
        object? iterable = Eval(f.Iterable, scope);
        List<object?> items = JinjaValues.Iterate(iterable) ?? throw Fail($"cannot loop over {JinjaValues.TypeName(iterable)}", f.Line);
        var loopScope = new Scope(scope);
        if (f.Filter is not null)
            items = [.. items.Where(item =>
            {
                Bind(f.Targets, item, loopScope, f.Line);
                return JinjaValues.Truthy(Eval(f.Filter, loopScope));
            })];
        if (items.Count == 0) return Execute(f.Else, scope, output);
        var loop = new LoopInfo(items);
        loopScope.Vars["loop"] = loop;
        for (int i = 0; i < items.Count; i++)
        {
            loop.Index0 = i;
            Bind(f.Targets, items[i], loopScope, f.Line);
            if (Execute(f.Body, loopScope, output) == Flow.Break) break;
        }
        return Flow.Normal;
    }

    private void Bind(IReadOnlyList<string> targets, object? value, Scope scope, int line)
    {
        if (targets.Count == 1)
        {
            scope.Vars[targets[0]] = value;
            return;
        }
        List<object?> parts = value as List<object?> ?? throw Fail($"cannot unpack {JinjaValues.TypeName(value)} into {targets.Count} names", line);
        if (parts.Count != targets.Count) throw Fail($"cannot unpack {parts.Count} values into {targets.Count} names", line);
        for (int i = 0; i < targets.Count; i++) scope.Vars[targets[i]] = parts[i];
    }

    private void Set(SetNode s, Scope scope)
    {
        object? value = Eval(s.Value, scope);
        if (s.Attribute is null)
        {
            Bind(s.Targets, value, scope, s.Line);
            return;
        }
        scope.TryGet(s.Targets[0], out object? target);
        if (target is not Namespace ns) throw Fail($"'{{% set {s.Targets[0]}.{s.Attribute} %}}' needs a namespace, but '{s.Targets[0]}' is {JinjaValues.TypeName(target)}", s.Line);
        ns[s.Attribute] = value;
    }

    private Callable Macro(MacroNode m, Scope definedIn) => new(m.Name, (p, k, line) =>
    {
        if (p.Count > m.Parameters.Count) throw Fail($"macro '{m.Name}' takes {m.Parameters.Count} argument(s), {p.Count} given", line);
        var scope = new Scope(definedIn);
        for (int i = 0; i < m.Parameters.Count; i++)
        {
            var (name, fallback) = m.Parameters[i];
            scope.Vars[name] = i < p.Count ? p[i]
                : k.TryGetValue(name, out var kv) ? kv
                : fallback is not null ? Eval(fallback, scope)
                : new Undefined(name);
        }
        foreach (string key in k.Keys)
            if (!m.Parameters.Any(x => x.Name == key)) throw Fail($"macro '{m.Name}' has no argument '{key}'", line);
        var output = new StringBuilder();
        Execute(m.Body, scope, output);
        return output.ToString();
    });

    private JinjaArguments Args(Arguments args, Scope scope, string what, int line)
    {
        var positional = args.Positional.Select(e => Eval(e, scope)).ToList();
        var keywords = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, e) in args.Keywords) keywords[name] = Eval(e, scope);
        return new JinjaArguments(positional, keywords, what, _name, line);
    }

    private object? Eval(Expr e, Scope scope)
    {
        switch (e)
        {
            case LiteralExpr l:
                return l.Value;
            case NameExpr n:
                return scope.TryGet(n.Name, out object? v) ? v : new Undefined(n.Name);
            case ListExpr list:
                return list.IsTuple ? new JinjaTuple(list.Items.Select(x => Eval(x, scope))) : list.Items.Select(x => Eval(x, scope)).ToList();
            case DictExpr d:
            {
                var dict = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (k, val) in d.Items)
                {
                    object? key = Eval(k, scope);
                    dict[key as string ?? throw Fail($"mapping keys must be strings, found {JinjaValues.TypeName(key)}", d.Line)] = Eval(val, scope);
                }
                return dict;
            }
            case AttributeExpr a:
                return JinjaOperators.Attribute(Eval(a.Target, scope), a.Name, p => Fail(p, a.Line));
            case IndexExpr i:
                return JinjaOperators.Item(Eval(i.Target, scope), Eval(i.Key, scope), p => Fail(p, i.Line));
            case SliceExpr s:
                return JinjaOperators.Slice(Eval(s.Target, scope), s.Start is null ? null : Eval(s.Start, scope),
                    s.Stop is null ? null : Eval(s.Stop, scope), s.Step is null ? null : Eval(s.Step, scope), p => Fail(p, s.Line));
            case CallExpr c:
            {
                object? target = Eval(c.Target, scope);
                if (target is not Callable f)
                    throw Fail(target is Undefined u ? $"unsupported function or undefined name '{u.Name}'" : $"{JinjaValues.TypeName(target)} is not callable", c.Line);
                JinjaArguments a = Args(c.Args, scope, f.Name, c.Line);
                return f.Invoke(a.Positional, a.Keywords, c.Line);
            }
            case FilterExpr f:
                return JinjaFilters.Apply(f.Name, Eval(f.Value, scope), Args(f.Args, scope, $"filter '{f.Name}'", f.Line));
            case TestExpr t:
            {
                bool r = JinjaTests.Apply(t.Name, Eval(t.Value, scope), Args(t.Args, scope, $"test '{t.Name}'", t.Line));
                return t.Negated ? !r : r;
            }
            case BinaryExpr b when b.Op == "and":
            {
                object? left = Eval(b.Left, scope);
                return JinjaValues.Truthy(left) ? Eval(b.Right, scope) : left;
            }
            case BinaryExpr b when b.Op == "or":
            {
                object? left = Eval(b.Left, scope);
                return JinjaValues.Truthy(left) ? left : Eval(b.Right, scope);
            }
            case BinaryExpr b:
                return JinjaOperators.Binary(b.Op, Eval(b.Left, scope), Eval(b.Right, scope), p => Fail(p, b.Line));
            case CompareChainExpr chain:
            {
                object? left = Eval(chain.First, scope);
                foreach (var (op, rightExpr) in chain.Links)
                {
                    object? right = Eval(rightExpr, scope);
                    if (!Compare(op, left, right, chain.Line)) return false;
                    left = right;
                }
                return true;
            }
            case UnaryExpr u:
            {
                object? operand = Eval(u.Operand, scope);
                return u.Op switch
                {
                    "not" => !JinjaValues.Truthy(operand),
                    "-" => operand switch { long l => (object)(-l), double d => -d, bool bo => bo ? -1L : 0L, _ => throw Fail($"bad operand for unary '-': {JinjaValues.TypeName(operand)}", u.Line) },
                    _ => JinjaValues.IsNumber(operand) ? operand : throw Fail($"bad operand for unary '+': {JinjaValues.TypeName(operand)}", u.Line),
                };
            }
            case ConditionalExpr c:
                return JinjaValues.Truthy(Eval(c.Condition, scope)) ? Eval(c.Then, scope)
                    : c.Else is null ? new Undefined("conditional expression without else") : Eval(c.Else, scope);
            default:
                throw Fail($"unsupported expression {e.GetType().Name}", e.Line);
        }
    }

    private bool Compare(string op, object? left, object? right, int line)
    {
        switch (op)
        {
            case "==": return JinjaValues.Equal(left, right);
            case "!=": return !JinjaValues.Equal(left, right);
            case "in": return JinjaOperators.Contains(right, left, line, new JinjaArguments([], [], "'in'", _name, line));
            case "not in": return !JinjaOperators.Contains(right, left, line, new JinjaArguments([], [], "'not in'", _name, line));
        }
        int c = JinjaValues.Compare(left, right) ?? throw Fail($"cannot compare {JinjaValues.TypeName(left)} and {JinjaValues.TypeName(right)} with '{op}'", line);
        return op switch { "<" => c < 0, ">" => c > 0, "<=" => c <= 0, _ => c >= 0 };
    }
}

"""SYNTHETIC paraphrase groups: the offline stand-in for Su's private ``tongyiju.csv``.

A group is one (intent, slot value) pair: 5-10 Chinese questions asking the same thing about the
same thing. Each of 40 intents has 4-8 one-slot templates; the slot values come from four typed
pools built in code (household objects, places, people, products; modifier x head, a few
hundred each). Every sentence picks a template, may swap its two comma-separated clauses, then
gets synonym swaps, an optional prefix and final particle, and per-character typos from a
confusable list. Hard negatives come from the design: the same intent with another value, and
the same value with another intent.

Open set: the slot values are split first, and held-out groups use only values never seen in a
training group. Groups come back in ``tongyiju.csv`` order: training groups first, held-out
groups last. Everything is a pure function of the seed (``random.Random``).

The word lists form a :class:`Lexicon`; the embedded dataset ``paraphrase_lexicon`` is that
lexicon written as JSON (``write_lexicon``), and the prepare stage samples groups from it with
the sizes and noise of params.yaml.

All the numbers here are project choices [assumption], not Su's; every report calls this data
synthetic.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kexue.config import Probability
from kexue.errors import DataError

LABEL = "SYNTHETIC paraphrase groups (embedded generator)"

# Slot pools: every modifier + head, so held-out values reuse seen characters in new combinations.
SLOT_POOLS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "household": (
        ("木头", "实木", "布艺", "真皮", "小号", "大号", "双人", "单人", "折叠", "白色", "黑色",
         "红色", "儿童", "老式", "新款", "进口", "国产", "宜家", "简约", "欧式"),
        ("沙发", "桌子", "椅子", "冰箱", "洗衣机", "电视", "空调", "床垫", "衣柜", "书架", "台灯",
         "茶几", "微波炉", "电饭煲", "热水器", "鞋柜", "餐桌", "窗帘", "地毯", "吸尘器"),
    ),
    "place": (
        ("北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "重庆", "武汉", "西安", "长沙",
         "苏州", "天津", "青岛", "厦门", "大连", "昆明", "郑州", "沈阳", "济南", "合肥", "福州",
         "南昌", "贵阳", "兰州", "哈尔滨", "长春", "太原", "石家庄", "南宁"),
        ("火车站", "机场", "动物园", "博物馆", "图书馆", "体育馆", "人民公园", "大学", "植物园",
         "海洋馆", "步行街", "汽车站", "科技馆", "游乐园"),
    ),
    "person": (
        ("王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高",
         "林", "何", "郭", "马", "罗", "梁", "宋", "郑", "谢", "韩", "唐", "冯", "于", "董", "萧"),
        ("老师", "医生", "律师", "经理", "教授", "师傅", "阿姨", "主任", "校长", "警官", "会计",
         "护士", "院长", "教练"),
    ),
    "product": (
        ("华为", "小米", "苹果", "三星", "联想", "戴尔", "索尼", "佳能", "美的", "格力", "海尔",
         "大疆", "荣耀", "魅族", "一加", "飞利浦", "松下", "惠普", "尼康", "罗技"),
        ("手机", "平板", "笔记本", "耳机", "手表", "相机", "音箱", "路由器", "显示器", "键盘",
         "鼠标", "充电宝", "电动牙刷", "剃须刀", "投影仪", "电脑", "电视盒子", "智能门锁",
         "扫地机器人", "电子书"),
    ),
}

ANY = "any"  # an intent that takes a value of every type

# (slot type, templates). "{X}" is the slot; a "，" marks two clauses that may swap places.
INTENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("household", ("{X}一般有多高", "{X}的高度是多少", "请问{X}大概多高", "{X}通常做多高",
                   "一般{X}多高合适", "{X}有多高，一般来说")),
    ("household", ("{X}有多重", "{X}的重量是多少", "{X}大概多少斤", "一个{X}有多沉",
                   "{X}重不重，搬得动吗")),
    ("household", ("{X}怎么清洗", "{X}脏了怎么洗", "怎么清洁{X}", "{X}用什么清洗比较好",
                   "清洗{X}的方法")),
    ("household", ("{X}怎么安装", "{X}的安装方法", "自己可以装{X}吗", "安装{X}要注意什么",
                   "{X}买回来，怎么装")),
    ("household", ("{X}能用多少年", "{X}的寿命有多长", "{X}一般用几年会坏", "{X}可以用多久")),
    ("household", ("怎么挑选{X}", "{X}怎么选比较好", "买{X}要看什么", "选购{X}有什么技巧",
                   "{X}哪个牌子好，怎么挑")),
    ("household", ("{X}放在哪里好", "{X}摆在什么位置合适", "家里的{X}应该放哪", "{X}怎么摆放")),
    ("household", ("{X}有甲醛吗", "{X}的味道有毒吗", "新买的{X}有异味怎么办",
                   "{X}安全吗，有没有甲醛")),
    ("place", ("怎么去{X}", "去{X}怎么走", "{X}怎么坐车", "到{X}坐几路公交", "{X}在哪里，怎么过去",
               "去{X}的路线")),
    ("place", ("{X}几点开门", "{X}的开放时间是什么时候", "{X}什么时候开门", "{X}早上几点开",
               "{X}营业时间")),
    ("place", ("{X}门票多少钱", "{X}的门票价格", "去{X}要买票吗", "{X}收费吗，票价多少")),
    ("place", ("{X}附近有什么好吃的", "{X}周边有啥美食", "{X}旁边哪里吃饭好", "{X}附近的餐馆推荐")),
    ("place", ("{X}停车方便吗", "{X}有停车场吗", "开车去{X}好停车吗", "{X}停车怎么收费")),
    ("place", ("{X}离市中心多远", "从市中心到{X}有多远", "{X}距离市区多少公里", "{X}远不远")),
    ("place", ("{X}周末人多吗", "周末去{X}人多不多", "{X}什么时候人少", "{X}节假日挤吗")),
    ("place", ("{X}有什么好玩的", "{X}里面有啥好玩", "{X}值得去吗", "去{X}玩什么",
               "{X}有哪些景点")),
    ("person", ("{X}的电话是多少", "{X}的手机号码", "怎么联系{X}", "{X}的联系方式",
                "谁有{X}的电话")),
    ("person", ("{X}多大年纪", "{X}今年几岁", "{X}多大了", "{X}的年龄是多少")),
    ("person", ("{X}在哪里上班", "{X}在什么地方工作", "{X}的单位在哪", "{X}在哪个单位")),
    ("person", ("{X}今天在吗", "{X}今天上班吗", "今天能找到{X}吗", "{X}今天来不来")),
    ("person", ("{X}几点下班", "{X}什么时候下班", "{X}下班时间是几点", "{X}一般几点走")),
    ("person", ("{X}是哪里人", "{X}老家在哪", "{X}是什么地方的人", "{X}的籍贯是哪里")),
    ("person", ("{X}人好不好", "{X}这个人怎么样", "{X}的脾气好吗", "大家觉得{X}怎么样")),
    ("person", ("怎么预约{X}", "{X}可以预约吗", "预约{X}要多久", "找{X}需要预约吗",
                "{X}怎么挂号，要预约吗")),
    ("product", ("{X}多少钱", "{X}的价格是多少", "{X}卖多少钱", "{X}现在什么价",
                 "买个{X}要多少钱")),
    ("product", ("{X}电池能用多久", "{X}的续航怎么样", "{X}充满电能用几天", "{X}待机时间多长")),
    ("product", ("{X}怎么恢复出厂设置", "{X}如何重置", "{X}怎么还原系统", "{X}恢复出厂的方法")),
    ("product", ("{X}保修多久", "{X}的保修期是几年", "{X}保修几年", "{X}坏了保修吗")),
    ("product", ("{X}坏了去哪里修", "{X}的维修点在哪", "哪里可以修{X}", "{X}售后在哪里")),
    ("product", ("{X}防水吗", "{X}能不能防水", "{X}进水了会坏吗", "{X}支持防水吗")),
    ("product", ("{X}怎么连蓝牙", "{X}蓝牙怎么打开", "{X}如何连接蓝牙", "{X}连不上蓝牙怎么办")),
    ("product", ("{X}值得买吗", "{X}值不值得入手", "{X}买了后悔吗", "现在买{X}划算吗",
                 "{X}好用吗，值得买吗")),
    (ANY, ("{X}怎么样", "{X}好不好", "大家觉得{X}如何", "{X}的评价怎么样", "说说{X}怎么样")),
    (ANY, ("{X}有什么缺点", "{X}的缺点是什么", "{X}有哪些不足", "{X}不好的地方有哪些")),
    (ANY, ("{X}用英语怎么说", "{X}的英文是什么", "{X}英文怎么写", "{X}翻译成英语")),
    (ANY, ("有没有{X}的照片", "{X}的图片", "求{X}的照片", "哪里能看到{X}的图片")),
    (ANY, ("{X}的资料在哪查", "哪里能查到{X}的资料", "关于{X}的介绍", "{X}的详细信息")),
    (ANY, ("{X}有什么故事", "关于{X}有什么故事", "{X}的故事", "讲讲{X}的故事")),
    (ANY, ("{X}为什么这么火", "{X}为什么很受欢迎", "{X}怎么这么火", "为啥{X}那么多人喜欢")),
    (ANY, ("{X}和别的有什么区别", "{X}和其他的有啥不同", "{X}跟别的比有什么不一样",
           "{X}的区别在哪里")),
)

# Swapped in both directions, longest match first.
SYNONYMS = (("多少", "几"), ("怎么", "如何"), ("什么", "啥"), ("可以", "能"), ("哪里", "哪儿"),
            ("一般", "通常"), ("大概", "大约"), ("是否", "是不是"))
PREFIXES = ("请问", "我想知道", "想问一下", "谁知道", "问一下")
PARTICLES = ("呢", "啊", "吗", "?", "？")
# Characters that are typed or read for one another (homophones, look-alikes).
CONFUSABLE = {
    "的": "得地", "得": "的地", "地": "的得", "在": "再", "再": "在", "做": "作", "作": "做",
    "哪": "那", "那": "哪", "几": "机", "么": "吗", "吗": "么嘛", "高": "搞", "钱": "前",
    "买": "卖", "卖": "买", "是": "事", "里": "理", "怎": "咋", "样": "洋", "去": "区",
    "多": "夺", "用": "甩", "开": "并", "门": "们", "号": "好", "好": "号", "电": "点",
    "话": "活", "时": "事", "候": "侯", "以": "已", "能": "熊", "上": "尚", "班": "斑",
    "人": "入", "大": "太", "太": "大", "小": "少", "长": "常", "手": "毛", "机": "几",
    "票": "漂", "站": "战", "园": "圆", "馆": "官", "师": "帅", "生": "声", "老": "考",
    "吃": "迟", "有": "友", "什": "十", "发": "法", "子": "仔", "桌": "卓", "冰": "兵",
    "箱": "相", "洗": "先", "衣": "依", "灯": "等", "床": "窗", "书": "输", "水": "谁",
    "车": "东", "路": "露", "公": "工", "火": "伙", "京": "惊", "州": "洲", "海": "每",
    "医": "衣", "律": "率", "经": "径", "理": "里", "教": "叫", "主": "住", "校": "效",
    "米": "来", "果": "裹", "星": "醒", "想": "相", "知": "之", "道": "到", "问": "间",
    "请": "清", "般": "搬", "概": "慨", "年": "念", "纪": "记", "岁": "碎", "周": "州",
    "修": "休", "坏": "怀", "防": "方", "连": "联", "蓝": "兰", "牙": "芽", "置": "制",
}


@dataclass
class ParaphraseNoise:
    """How each sentence is varied; probabilities per sentence unless said otherwise."""

    reorder: Probability[float] = 0.5  # swap the two clauses of a template that has a "，"
    synonym: Probability[float] = 0.5  # per occurrence of a synonym-list word
    prefix: Probability[float] = 0.3
    particle: Probability[float] = 0.3
    typo: Probability[float] = 0.03  # per character that has confusables
    # name the value by its head only ("沙发" for "布艺沙发", "老师" for "王老师"): such a
    # sentence could belong to any group of its intent and head, a genuine ambiguity that keeps
    # retrieval below 1.0 (the calibration knob)
    head_only: Probability[float] = 0.0


Value = tuple[str, str]  # (modifier, head)


@dataclass(frozen=True)
class Lexicon:
    slot_pools: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]  # type -> (modifiers, heads)
    intents: tuple[tuple[str, tuple[str, ...]], ...]  # (slot type or ANY, templates)
    synonyms: tuple[tuple[str, str], ...]
    prefixes: tuple[str, ...]
    particles: tuple[str, ...]
    confusable: dict[str, str]  # character -> the characters it may be mistyped as

    @classmethod
    def from_dict(cls, d: dict) -> Lexicon:
        return cls({k: (tuple(m), tuple(h)) for k, (m, h) in d["slot_pools"].items()},
                   tuple((kind, tuple(ts)) for kind, ts in d["intents"]),
                   tuple((a, b) for a, b in d["synonyms"]), tuple(d["prefixes"]),
                   tuple(d["particles"]), dict(d["confusable"]))


LEXICON = Lexicon(SLOT_POOLS, INTENTS, SYNONYMS, PREFIXES, PARTICLES, CONFUSABLE)
LEXICON_FILE = "lexicon.json"


def write_lexicon(dest: Path) -> None:
    """The embedded dataset ``paraphrase_lexicon``: ``lexicon.json``, byte-reproducible (into
    the fresh folder that ``generate_dataset`` renames into place; no torch imported here, as
    the article's config imports this module while Snakemake parses the DAG)."""
    (Path(dest) / LEXICON_FILE).write_text(
        json.dumps(asdict(LEXICON), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def read_lexicon(folder: Path) -> Lexicon:
    path = Path(folder) / LEXICON_FILE
    try:
        return Lexicon.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path}: not a paraphrase lexicon ({type(e).__name__}: {e})") from None


@dataclass
class ParaphraseCorpus:
    groups: list[list[str]]  # training groups first, then the held-out ones
    n_train: int
    intents: list[int]  # per group: index into the lexicon's intents
    values: list[str]  # per group: the slot value
    settings: dict = field(default_factory=dict)
    label: str = LABEL


def split_values(lex: Lexicon, kind: str, n_train: int, heads: int, modifiers: int,
                 rng: random.Random) -> tuple[list[Value], list[Value]]:
    """(training values, held-out values) of one type, disjoint. The held-out values are
    ``modifiers`` modifiers on each of ``heads`` heads, so that held-out groups are dense in
    confusers (same head, other modifier); the training values are ``n_train`` of the rest."""
    all_modifiers, all_heads = lex.slot_pools[kind]
    if heads > len(all_heads) or modifiers > len(all_modifiers):
        raise ValueError(f"{kind}: {heads} heads x {modifiers} modifiers asked, the pool has "
                         f"{len(all_heads)} x {len(all_modifiers)}")
    heldout = [(m, h) for h in rng.sample(all_heads, heads)
               for m in rng.sample(all_modifiers, modifiers)]
    rest = sorted({(m, h) for m in all_modifiers for h in all_heads} - set(heldout))
    if n_train > len(rest):
        raise ValueError(f"{kind}: {n_train} training values asked, {len(rest)} are left")
    return rng.sample(rest, n_train), heldout


def _swap_synonyms(text: str, synonyms, p: float, rng: random.Random) -> str:
    partner = {a: b for a, b in synonyms} | {b: a for a, b in synonyms}
    words = sorted(partner, key=len, reverse=True)
    out, i = [], 0
    while i < len(text):
        word = next((w for w in words if text.startswith(w, i)), None)
        if word is None:
            out.append(text[i])
            i += 1
            continue
        out.append(partner[word] if rng.random() < p else word)
        i += len(word)
    return "".join(out)


def _typos(text: str, confusable: dict[str, str], p: float, rng: random.Random) -> str:
    return "".join(rng.choice(confusable[c]) if c in confusable and rng.random() < p else c
                   for c in text)


def make_sentence(template: str, value: Value, noise: ParaphraseNoise, rng: random.Random,
                  lex: Lexicon = LEXICON) -> str:
    modifier, head = value
    name = head if rng.random() < noise.head_only else modifier + head
    clauses = template.split("，")
    if len(clauses) == 2 and rng.random() < noise.reorder:
        clauses.reverse()
    # Synonyms change the template only, never the value ("智能门锁" keeps its "能").
    text = _swap_synonyms("，".join(clauses), lex.synonyms, noise.synonym, rng)
    text = text.replace("{X}", name)
    if rng.random() < noise.prefix:
        text = rng.choice(lex.prefixes) + text
    if rng.random() < noise.particle:
        text += rng.choice(lex.particles)
    return _typos(text, lex.confusable, noise.typo, rng)


def _group(templates: tuple[str, ...], value: Value, size: int, noise: ParaphraseNoise,
           rng: random.Random, lex: Lexicon) -> list[str]:
    """``size`` distinct sentences (fewer only if 50 draws per sentence cannot find them)."""
    seen: dict[str, None] = {}
    for _ in range(50 * size):
        seen.setdefault(make_sentence(rng.choice(templates), value, noise, rng, lex))
        if len(seen) == size:
            break
    return list(seen)


def _pairs(lex: Lexicon, values: dict[str, list[Value]]) -> list[tuple[int, Value]]:
    """Every (intent index, value) whose types match."""
    return [(i, v) for i, (kind, _) in enumerate(lex.intents)
            for k, vs in values.items() if kind in (k, ANY) for v in vs]


def generate(n_groups: int, heldout_fraction: float = 0.1, values_per_type: int = 300,
             heldout_heads: int = 4, heldout_modifiers: int = 3, min_size: int = 5,
             max_size: int = 10, noise: ParaphraseNoise | None = None, seed: int = 0,
             lex: Lexicon = LEXICON) -> ParaphraseCorpus:
    """``n_groups`` groups, the last ``round(n_groups * heldout_fraction)`` held out, built on
    slot values that no training group uses (see ``split_values``)."""
    noise = noise or ParaphraseNoise()
    rng = random.Random(seed)
    n_heldout = round(n_groups * heldout_fraction)
    train_values, heldout_values = {}, {}
    for kind in lex.slot_pools:
        train_values[kind], heldout_values[kind] = split_values(
            lex, kind, values_per_type, heldout_heads, heldout_modifiers, rng)
    chosen = []
    for values, n, what in ((train_values, n_groups - n_heldout, "training"),
                            (heldout_values, n_heldout, "held-out")):
        pairs = _pairs(lex, values)
        if n > len(pairs):
            raise ValueError(f"{n} {what} groups asked, only {len(pairs)} (intent, value) pairs "
                             f"exist: raise values_per_type or heldout_heads/heldout_modifiers")
        chosen += rng.sample(pairs, n)
    groups = [_group(lex.intents[i][1], v, rng.randint(min_size, max_size), noise, rng, lex)
              for i, v in chosen]
    settings = {"n_groups": n_groups, "heldout_fraction": heldout_fraction,
                "values_per_type": values_per_type, "heldout_heads": heldout_heads,
                "heldout_modifiers": heldout_modifiers, "min_size": min_size,
                "max_size": max_size, "seed": seed,
                **{f"noise.{k}": v for k, v in vars(noise).items()}}
    return ParaphraseCorpus(groups, n_groups - n_heldout, [i for i, _ in chosen],
                            ["".join(v) for _, v in chosen], settings)

"""Synthetic knowledge-base QA in Su's SogouQA format (SYNTHETIC: every report says so).

A random knowledge base of persons, places, organisations, works, inventions, years and
quantities with 12 relations; every question asks one (subject, relation) fact and comes with
5-10 passages: 2-4 state the fact (the answer 1-3 times, sometimes as an alias; the passage's
``answer`` is the form that occurs in it, as in Su's JSON), the others are hard negatives
(other facts about the same subject, with entities of the answer's type), the same relation
for other subjects, and filler. Digits and letters are randomly full-width and punctuation
varies, to exercise the metric's normalisation. Validation questions are about subjects never
seen in training. Every parameter is a project choice (spec dgcnn_qa §5.3).

``generate(dest)`` writes ``train.json``, ``valid.json`` (Su's format) and ``valid_expand``,
``train_expand`` (the metric's ``qid_answer_expand`` format: gold, then gold|aliases).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from kexue.data.qa import Passage, Question, save_su_json
from kexue.io import atomic_path

TRAIN_QUESTIONS = 6000
VALID_QUESTIONS = 1500
SEED = 20180415  # the 2018 article's date

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘蒋蔡余杜叶程魏苏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉宇晨浩凯健俊帆琳雪婷倩文博志国建海音含春德福成立新永安宏峰清月云飞龙凤松柏"
_PLACE = "安宁平康和兴隆昌盛泰顺德阳江河山海湖川岭峰林泉石桥州城原庆南北东西中华新长青白金"
_ORG = "华宏达信通恒瑞祥鑫联合创远航科技盛辉腾飞万嘉金银利丰"
_WORK = "春秋月光风雨山河梦远星辰花开归途故乡长夜青春烟火人间岁月江湖少年海浪"
_THING = "光电磁声热水风速动能量子频"

_FILLER = (
    "这是一个很多人都关心的问题", "网友们对此众说纷纭", "下面我们来详细了解一下",
    "相关资料整理如下", "欢迎大家在评论区留言讨论", "以上内容仅供参考", "更多信息请关注官方网站",
    "本文由编辑整理发布", "答案可能因资料来源不同而有所差异", "据不完全统计",
    "这一说法得到了广泛认可", "此事在当地引起了热议", "很多读者对此很感兴趣",
)


@dataclass(frozen=True)
class Entity:
    name: str
    kind: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Relation:
    name: str
    subject: str
    object: str
    questions: tuple[str, ...]
    sentences: tuple[str, ...]  # {s} subject, {o} object


RELATIONS = (
    Relation("出生地", "person", "city", ("{s}出生在哪里", "{s}的出生地是哪个城市", "{s}是哪里人"),
             ("{s}出生于{o}", "{s}是{o}人", "{o}是{s}的故乡", "{s}的出生地是{o}")),
    Relation("省会", "province", "city", ("{s}的省会是哪里", "{s}的省会城市是", "{s}省会在哪"),
             ("{s}的省会是{o}", "{o}是{s}的省会城市", "{s}省会设在{o}")),
    Relation("作者", "book", "person", ("{s}的作者是谁", "{s}是谁写的", "{s}的作者"),
             ("{s}是{o}创作的作品", "{o}写了{s}", "{s}的作者是{o}")),
    Relation("成立年份", "company", "year", ("{s}是哪一年成立的", "{s}成立于哪年", "{s}成立时间"),
             ("{s}成立于{o}", "{o}，{s}正式成立", "{s}创建于{o}")),
    Relation("创始人", "company", "person", ("{s}的创始人是谁", "谁创办了{s}", "{s}创始人"),
             ("{s}由{o}创办", "{o}是{s}的创始人", "{o}一手创立了{s}")),
    Relation("位于", "company", "city", ("{s}位于哪个城市", "{s}在哪里", "{s}总部在哪"),
             ("{s}位于{o}", "{s}总部设在{o}", "{s}坐落在{o}")),
    Relation("身高", "person", "height", ("{s}的身高是多少", "{s}有多高", "{s}身高多少"),
             ("{s}身高{o}", "{s}的身高为{o}", "据报道{s}身高约{o}")),
    Relation("配偶", "person", "person", ("{s}的妻子是谁", "{s}的配偶是谁", "{s}和谁结婚了"),
             ("{s}的妻子是{o}", "{s}与{o}结婚", "{o}是{s}的配偶")),
    Relation("毕业院校", "person", "university", ("{s}毕业于哪所大学", "{s}是哪个学校毕业的"),
             ("{s}毕业于{o}", "{s}从{o}毕业", "{o}是{s}的母校")),
    Relation("主演", "film", "person", ("{s}的主演是谁", "{s}是谁主演的", "{s}男主角是谁"),
             ("{s}由{o}主演", "{o}在{s}中担任主演", "{s}的主演是{o}")),
    Relation("发明者", "invention", "person", ("{s}是谁发明的", "{s}的发明者是谁", "谁发明了{s}"),
             ("{s}是{o}发明的", "{o}发明了{s}", "{s}的发明者是{o}")),
    Relation("面积", "province", "area", ("{s}的面积有多大", "{s}面积是多少", "{s}的总面积"),
             ("{s}的面积为{o}", "{s}总面积约{o}", "{s}面积达{o}")),
)


def _pick(rng: random.Random, chars: str, k: int) -> str:
    return "".join(rng.choice(chars) for _ in range(k))


def _person(rng):
    surname, given = rng.choice(_SURNAMES), _pick(rng, _GIVEN, rng.choice((1, 2, 2)))
    aliases = []
    if len(given) == 2 and rng.random() < 0.3:
        aliases.append(given)  # called by the given name
    if rng.random() < 0.2:
        aliases.append(rng.choice(_SURNAMES) + _pick(rng, _GIVEN, 2))  # a pen name
    return Entity(surname + given, "person", tuple(aliases))


def _named(rng, kind, chars, suffix, alias_prob=0.5):
    stem = _pick(rng, chars, rng.choice((2, 2, 3)))
    return Entity(stem + suffix, kind, (stem,) if rng.random() < alias_prob else ())


def _company(rng):
    if rng.random() < 0.2:  # Latin-letter names exercise the width/case normalisation
        stem = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(rng.choice((2, 3))))
        return Entity(stem + "公司", "company", (stem,) if rng.random() < 0.5 else ())
    return _named(rng, "company", _ORG, rng.choice(("公司", "集团", "银行")))


def _title(rng, kind):
    stem = _pick(rng, _WORK, rng.choice((2, 3, 4)))
    return Entity(f"《{stem}》", kind, (stem,) if rng.random() < 0.3 else ())


def _value(rng, kind):
    if kind == "year":
        y = rng.randint(1900, 2020)
        return Entity(f"{y}年", kind, (str(y),) if rng.random() < 0.3 else ())
    if kind == "height":
        cm = rng.randint(150, 200)
        return Entity(f"{cm / 100:.2f}米", kind, (f"{cm}厘米",) if rng.random() < 0.3 else ())
    n = rng.randint(1, 99) * 1000
    return Entity(f"{n}平方公里", kind, (f"{n // 10000}万平方公里",) if n % 10000 == 0 else ())


_MAKERS = {
    "person": _person,
    "city": lambda r: _named(r, "city", _PLACE, r.choice(("市", "县"))),
    "province": lambda r: _named(r, "province", _PLACE, r.choice(("省", "岛"))),
    "company": _company,
    "university": lambda r: _named(r, "university", _PLACE, "大学"),
    "book": lambda r: _title(r, "book"),
    "film": lambda r: _title(r, "film"),
    "invention": lambda r: _named(r, "invention", _THING, r.choice(("机", "仪", "器")), 0.0),
    "year": lambda r: _value(r, "year"),
    "height": lambda r: _value(r, "height"),
    "area": lambda r: _value(r, "area"),
}


def _pool(rng: random.Random, kind: str, n: int) -> list[Entity]:
    """Up to n distinct entities (value kinds such as years have fewer)."""
    seen, out = set(), []
    for _ in range(4 * n):
        if len(out) == n:
            break
        e = _MAKERS[kind](rng)
        if e.name not in seen:
            seen.add(e.name)
            out.append(e)
    return out


_FULLWIDTH_TABLE = {ord(c): ord(c) + 0xFEE0 for c in "0123456789.ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
_PUNCT_VARIANTS = {"，": ("，", ",", "，"), "。": ("。", ".", "。", "！")}


def _surface(rng: random.Random, text: str) -> str:
    """Full-width digits/letters in about one passage of four."""
    return text.translate(_FULLWIDTH_TABLE) if rng.random() < 0.25 else text


class _World:
    def __init__(self, rng: random.Random, n_subjects: int):
        kinds = {r.subject for r in RELATIONS} | {r.object for r in RELATIONS}
        self.pools = {k: _pool(rng, k, n_subjects) for k in sorted(kinds)}
        self.facts: dict[tuple[str, str], Entity] = {}
        for rel in RELATIONS:
            for s in self.pools[rel.subject]:
                o = rng.choice(self.pools[rel.object])
                if o.name != s.name:
                    self.facts[(s.name, rel.name)] = o


def _sentence(rng, rel: Relation, s: Entity, o: str) -> str:
    return rng.choice(rel.sentences).format(s=s.name, o=o)


def _join(rng, sentences: list[str]) -> str:
    out = []
    for i, s in enumerate(sentences):
        out.append(s + rng.choice(_PUNCT_VARIANTS["。" if i == len(sentences) - 1 or rng.random()
                                                   < 0.6 else "，"]))
    return "".join(out)


def _passage(rng, core: list[str], extra: list[str], target_len: int) -> str:
    sentences = list(core)
    rng.shuffle(extra)
    for s in extra:
        if sum(map(len, sentences)) + len(s) > target_len:
            break
        sentences.insert(rng.randint(0, len(sentences)), s)
    return _join(rng, sentences)[:250]


def _context(rng, world: _World, subject: Entity, kind: str, exclude: tuple[str, ...]
             ) -> list[str]:
    """Filler and the other known facts about ``subject``, none mentioning an ``exclude`` form."""
    out = [rng.choice(_FILLER) for _ in range(rng.randint(1, 6))]
    for rel in RELATIONS:
        fact = world.facts.get((subject.name, rel.name))
        if rel.subject == kind and fact and fact.name not in exclude:
            out.append(_sentence(rng, rel, subject, fact.name))
    return [x for x in out if not any(f in x for f in exclude)]


def _questions(rng: random.Random, world: _World, subjects: dict[str, list[Entity]],
               n: int, first_id: int) -> tuple[list[Question], list[tuple[str, str, tuple]]]:
    questions, expand = [], []
    keys = [(s, rel) for rel in RELATIONS for s in subjects[rel.subject]
            if (s.name, rel.name) in world.facts]
    for k in range(n):
        s, rel = rng.choice(keys)
        o = world.facts[(s.name, rel.name)]
        forms = (o.name, *o.aliases)
        qid = str(first_id + k)

        passages = []
        for _ in range(rng.randint(2, 4)):  # answer passages
            form = o.name if rng.random() < 0.7 else rng.choice(forms)
            core = [_sentence(rng, rel, s, form) for _ in range(rng.choice((1, 1, 2, 3)))]
            context = _context(rng, world, s, rel.subject, forms)
            text = _surface(rng, _passage(rng, core, context, rng.randint(30, 200)))
            surfaced = _surface_form(text, form)
            if surfaced:
                passages.append(Passage(text, surfaced))
        for _ in range(rng.randint(5, 10) - len(passages)):  # negatives
            kind = rng.random()
            if kind < 0.4:  # the same subject, other relations (hard negatives)
                context = _context(rng, world, s, rel.subject, forms)
                text = _passage(rng, [], context, rng.randint(30, 200))
            elif kind < 0.8:  # the same relation for another subject
                other = rng.choice(subjects[rel.subject])
                fact = world.facts.get((other.name, rel.name))
                core = ([_sentence(rng, rel, other, fact.name)]
                        if fact and other.name != s.name and fact.name not in forms else [])
                context = _context(rng, world, other, rel.subject, forms)
                text = _passage(rng, core, context, rng.randint(30, 200))
            else:
                text = _join(rng, [rng.choice(_FILLER) for _ in range(rng.randint(2, 6))])
            text = _surface(rng, text)
            if len(text) >= 5 and not any(_surface_form(text, f) for f in forms):
                passages.append(Passage(text, ""))
        rng.shuffle(passages)
        questions.append(Question(qid, rng.choice(rel.questions).format(s=s.name),
                                  tuple(passages)))
        expand.append((qid, o.name, forms))
    return questions, expand


def _surface_form(text: str, form: str) -> str:
    """The form of the answer as it occurs in a (possibly full-width) passage, or ""."""
    wide = form.translate(_FULLWIDTH_TABLE)
    return form if form in text else wide if wide in text else ""


def _write_expand(path: Path, rows) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{qid}\t{gold}\t{'|'.join(forms)}\n" for qid, gold, forms in rows),
                       encoding="utf-8")


def build(seed: int = SEED, n_train: int | None = None, n_valid: int | None = None,
          n_subjects: int = 600) -> tuple[list[Question], list, list[Question], list]:
    """(train questions, train expand rows, valid questions, valid expand rows)."""
    n_train = TRAIN_QUESTIONS if n_train is None else n_train
    n_valid = VALID_QUESTIONS if n_valid is None else n_valid
    rng = random.Random(seed)
    world = _World(rng, n_subjects)
    cut = int(n_subjects * 0.8)  # validation subjects are never asked about in training
    train_subjects = {k: v[:cut] for k, v in world.pools.items()}
    valid_subjects = {k: v[cut:] for k, v in world.pools.items()}
    train, train_expand = _questions(rng, world, train_subjects, n_train, 100_000)
    valid, valid_expand = _questions(rng, world, valid_subjects, n_valid, 200_000)
    return train, train_expand, valid, valid_expand


def generate(dest: Path) -> None:
    """The registry's generator: the default-profile sizes (smoke takes a prefix)."""
    write(dest)


def write(dest: Path, **sizes) -> None:
    """Write the four files of ``build(**sizes)`` into ``dest``."""
    dest = Path(dest)
    train, train_expand, valid, valid_expand = build(**sizes)
    save_su_json(dest / "train.json", train)
    save_su_json(dest / "valid.json", valid)
    _write_expand(dest / "train_expand", train_expand)
    _write_expand(dest / "valid_expand", valid_expand)

// The page's language: the strings Django translated for it ({% djenga_i18n %} renders them as
// JSON in the page) and Intl for numbers and durations. Without a catalog, English.

/**
 * Compile a gettext plural expression ("n != 1", "n==0 ? 0 : n==1 ? 1 : …") into a function
 * from n to the plural form's index, without eval (pages may forbid it by CSP).
 */
export function compilePlural(expression) {
  const tokens = String(expression).match(/\d+|n|&&|\|\||[=!<>]=|[-+*/%<>?:()!]/g) || [];
  let at = 0;
  const peek = () => tokens[at];
  const take = (token) => {
    if (tokens[at] !== token) throw new SyntaxError(`plural expression: expected ${token} in ${expression}`);
    at++;
  };
  const BINARY = [['||'], ['&&'], ['==', '!='], ['<', '>', '<=', '>='], ['+', '-'], ['*', '/', '%']];
  const APPLY = {
    '||': (a, b) => +(a || b), '&&': (a, b) => +(a && b), '==': (a, b) => +(a === b), '!=': (a, b) => +(a !== b),
    '<': (a, b) => +(a < b), '>': (a, b) => +(a > b), '<=': (a, b) => +(a <= b), '>=': (a, b) => +(a >= b),
    '+': (a, b) => a + b, '-': (a, b) => a - b, '*': (a, b) => a * b,
    '/': (a, b) => Math.trunc(a / b), '%': (a, b) => a % b,
  };
  const ternary = () => {
    const test = binary(0);
    if (peek() !== '?') return test;
    at++;
    const yes = ternary();
    take(':');
    const no = ternary();
    return (n) => (test(n) ? yes(n) : no(n));
  };
  const binary = (level) => {
    if (level === BINARY.length) return unary();
    let left = binary(level + 1);
    while (BINARY[level].includes(peek())) {
      const op = APPLY[tokens[at++]];
      const l = left;
      const right = binary(level + 1);
      left = (n) => op(l(n), right(n));
    }
    return left;
  };
  const unary = () => {
    const token = tokens[at++];
    if (token === '!') { const inner = unary(); return (n) => +!inner(n); }
    if (token === '(') { const inner = ternary(); take(')'); return inner; }
    if (token === 'n') return (n) => n;
    if (/^\d+$/.test(token ?? '')) { const value = Number(token); return () => value; }
    throw new SyntaxError(`plural expression: unexpected ${token} in ${expression}`);
  };
  const compiled = ternary();
  if (at !== tokens.length) throw new SyntaxError(`plural expression: trailing ${peek()} in ${expression}`);
  return (n) => Number(compiled(n));
}

/** "%(name)s" placeholders filled from `values`, as Django's own `interpolate(…, true)`. */
export const interpolate = (template, values = {}) =>
  String(template).replace(/%\((\w+)\)s/g, (whole, name) => (Object.hasOwn(values, name) ? String(values[name]) : whole));

/** Strings and Intl formats of one language. `catalog` is what `{% djenga_i18n %}` renders. */
export class Translator {
  constructor({ catalog = {}, plural = null, locale = '', dir = '' } = {}) {
    this.catalog = catalog && typeof catalog === 'object' ? catalog : {};
    this.locale = locale || 'en';
    this.dir = dir === 'rtl' ? 'rtl' : dir === 'ltr' ? 'ltr' : '';
    try {
      this._plural = plural ? compilePlural(plural) : null;
    } catch (err) {
      console.warn('<djenga-task-progress> ignoring a bad plural expression', err);
      this._plural = null;
    }
    this._formats = new Map();
  }

  /** The translation of `msgid`, with "%(name)s" filled from `values`. */
  gettext(msgid, values) {
    const found = this.catalog[msgid];
    const message = typeof found === 'string' && found ? found : Array.isArray(found) && found[0] ? found[0] : msgid;
    return interpolate(message, values);
  }

  /** The singular or one of the plural forms for count `n`; "%(n)s" is n formatted, as are other values. */
  ngettext(singular, plural, n, values = {}) {
    const forms = this.catalog[singular];
    let message;
    if (Array.isArray(forms) && this._plural) {
      const index = this._plural(Math.abs(n));
      message = forms[index] || forms[forms.length - 1];
    }
    message ||= n === 1 ? singular : plural;
    return interpolate(message, { n: this.number(n), ...values });
  }

  /** A number as the page's language writes it ("2000", "12 345", "٣٧"), at most two decimals. */
  number(n, options = {}) {
    return this._format(Intl.NumberFormat, { maximumFractionDigits: 2, useGrouping: 'min2', ...options }).format(n);
  }

  /** A percentage from 0 to 100 ("37%", "37 %", "٣٧٪"). */
  percent(p) {
    return this._format(Intl.NumberFormat, { style: 'percent', maximumFractionDigits: 0 }).format(p / 100);
  }

  /** An amount of one unit ('second', 'minute', 'hour'), short ("12 sec", "0,4 s", "3 分"). */
  unit(value, unit, fractionDigits = 0) {
    const options = { style: 'unit', unit, minimumFractionDigits: fractionDigits, maximumFractionDigits: fractionDigits };
    return this._format(Intl.NumberFormat, options).format(value);
  }

  /** A duration from whole {hours, minutes, seconds}, short style ("3 min, 5 sec"). */
  duration(parts) {
    if (typeof Intl.DurationFormat === 'function') return this._format(Intl.DurationFormat, { style: 'short' }).format(parts);
    // Browsers before Intl.DurationFormat: one unit after another.
    return this.list(Object.entries(parts).map(([unit, value]) => this.unit(value, unit.replace(/s$/, ''))));
  }

  /** Items joined as the language lists them ("a, b, c"). */
  list(items) {
    return this._format(Intl.ListFormat, { style: 'short', type: 'unit' }).format(items);
  }

  _format(Format, options) {
    const key = `${Format.name}:${JSON.stringify(options)}`;
    if (!this._formats.has(key)) {
      let format;
      try { format = new Format(this.locale, options); } catch { format = new Format('en', options); }
      this._formats.set(key, format);
    }
    return this._formats.get(key);
  }
}

/** English, the language of the msgids: what a page without a catalog gets. */
export const ENGLISH = new Translator({ locale: 'en' });

const pages = new WeakMap();

/**
 * The translator of the page `doc`: its `<script type="application/json" data-djenga-i18n>`
 * catalog if there is one (read once), else English (text and Intl formats alike, so a page
 * without a catalog never mixes English words with another language's numbers).
 */
export function pageTranslator(doc = globalThis.document) {
  if (!doc) return ENGLISH;
  if (pages.has(doc)) return pages.get(doc);
  const script = doc.querySelector('script[data-djenga-i18n]');
  let translator = null;
  if (script) {
    try {
      translator = new Translator(JSON.parse(script.textContent));
    } catch (err) {
      console.warn('<djenga-task-progress> ignoring a catalog that is not JSON', err);
    }
  }
  // Only cache a found catalog: an SPA may add it after the first element rendered.
  if (translator) pages.set(doc, translator);
  return translator || ENGLISH;
}

/** Values a handler could throw when it builds its error from peer data: each breaks naive error handling in its own way. */
export function hostileValues(): unknown[] {
  const throwingGetter = Object.defineProperty({}, 'message', {
    get() {
      throw new Error('getter bomb');
    },
  });
  const throwingToString = {
    toString: () => {
      throw new Error('toString bomb');
    },
  };
  const nullProto = Object.create(null) as object;
  const notFunctionToString = { toString: 42, message: 7 };
  const proxy = new Proxy(
    {},
    {
      get() {
        throw new Error('proxy bomb');
      },
      getPrototypeOf() {
        throw new Error('proxy proto bomb');
      },
    },
  );
  const errorWithObjectMessage = Object.assign(new Error('x'), { message: { nested: true } });
  const huge = 'A'.repeat(100_000);
  const control = 'line\u0000one\r\nFAKE LOG LINE\u001b[31mred\u202e';
  return [
    throwingGetter,
    throwingToString,
    nullProto,
    notFunctionToString,
    proxy,
    errorWithObjectMessage,
    huge,
    control,
    undefined,
    null,
    42,
    Symbol('s'),
    10n,
    () => 1,
  ];
}

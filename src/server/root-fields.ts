import { type DocumentNode, Kind, type SelectionSetNode } from 'graphql';

type FragmentLookup = (name: string) => { selectionSet: SelectionSetNode } | null | undefined;

/**
 * Root fields of `selections` by response key (fragments followed, each once): what execution will
 * run, since fields merged under one response key run once.
 */
export function rootFields(
  selections: SelectionSetNode,
  fragment: FragmentLookup,
  keys = new Map<string, string>(),
  seen = new Set<string>(),
): Map<string, string> {
  for (const selection of selections.selections) {
    if (selection.kind === Kind.FIELD) keys.set((selection.alias ?? selection.name).value, selection.name.value);
    else if (selection.kind === Kind.INLINE_FRAGMENT) rootFields(selection.selectionSet, fragment, keys, seen);
    else if (!seen.has(selection.name.value)) {
      seen.add(selection.name.value);
      const found = fragment(selection.name.value);
      if (found) rootFields(found.selectionSet, fragment, keys, seen);
    }
  }
  return keys;
}

/** A parsed document's fragment lookup, for `rootFields` outside validation. */
export function fragmentsOf(document: DocumentNode): FragmentLookup {
  const fragments = new Map(
    document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [])),
  );
  return (name) => fragments.get(name);
}

// JSX for React 19: `import type {} from 'djenga-widget/react';` once (or list it in
// tsconfig "types") and <djenga-task-progress> type-checks in .tsx files.

import type { DjengaTaskProgressJSXProps } from './index.js';

declare module 'react' {
  namespace JSX {
    interface IntrinsicElements {
      'djenga-task-progress': DjengaTaskProgressJSXProps;
    }
  }
}
